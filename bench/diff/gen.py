"""Writes a pair of 500-resource CloudFormation templates for the diff benchmark.

usage: python3 gen.py OUT_DIR [RESOURCES] [--yaml]
The new template modifies about one resource in ten (mutable properties), renames one in fifty
(replacement, with propagation through Ref/GetAtt), adds ten and removes ten. With --yaml it also
writes the same pair as old.yaml and new.yaml, block style with the short `!Ref` and `!GetAtt`
tags, as hand-written templates are.
"""
import copy
import json
import random
import sys

args = [a for a in sys.argv[1:] if a != "--yaml"]
out = args[0]
n = int(args[1]) if len(args) > 1 else 500
yaml_too = "--yaml" in sys.argv
rng = random.Random(42)


def queue(i):
    return {
        f"Dlq{i}": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"q{i}-dlq", "SqsManagedSseEnabled": True}},
        f"Queue{i}": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": f"q{i}",
                "VisibilityTimeout": 30,
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [f"Dlq{i}", "Arn"]}, "maxReceiveCount": 5},
            },
        },
        f"Alarm{i}": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": f"q{i}-age",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [f"Queue{i}", "QueueName"]}}],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 5,
                "Threshold": 600,
                "ComparisonOperator": "GreaterThanThreshold",
            },
        },
        f"Role{i}": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
                },
                "Policies": [{
                    "PolicyName": "consume",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"], "Resource": {"Fn::GetAtt": [f"Queue{i}", "Arn"]}}],
                    },
                }],
            },
        },
        f"Param{i}": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": f"/svc/q{i}/url", "Type": "String", "Value": {"Ref": f"Queue{i}"}},
        },
    }


old = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}, "Outputs": {}}
i = 0
while len(old["Resources"]) < n:
    old["Resources"].update(queue(i))
    old["Outputs"][f"Queue{i}Arn"] = {"Value": {"Fn::GetAtt": [f"Queue{i}", "Arn"]}, "Export": {"Name": f"svc-Queue{i}Arn"}}
    i += 1
while len(old["Resources"]) > n:
    old["Resources"].popitem()

new = copy.deepcopy(old)
ids = sorted(new["Resources"])
for rid in rng.sample(ids, len(ids) // 10):
    props = new["Resources"][rid]["Properties"]
    if "VisibilityTimeout" in props:
        props["VisibilityTimeout"] = 60
    elif "Threshold" in props:
        props["Threshold"] = 900
    elif "Policies" in props:
        props["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"].append("sqs:ChangeMessageVisibility")
    elif "Value" in props:
        props["Description"] = "queue url"
for rid in rng.sample([r for r in ids if r.startswith("Dlq")], max(1, len(ids) // 50)):
    new["Resources"][rid]["Properties"]["QueueName"] += "-v2"
for rid in rng.sample([r for r in ids if r.startswith("Param")], 10):
    del new["Resources"][rid]
for k in range(10):
    new["Resources"][f"Extra{k}"] = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"extra-{k}"}}

for name, t in (("old.json", old), ("new.json", new)):
    with open(f"{out}/{name}", "w") as f:
        json.dump(t, f, indent=1)
if yaml_too:
    import yaml

    class Short(dict):
        """An intrinsic written with its short tag."""

    def shorten(v):
        if isinstance(v, dict):
            if list(v) == ["Ref"]:
                return Short(tag="!Ref", value=v["Ref"])
            if list(v) == ["Fn::GetAtt"] and isinstance(v["Fn::GetAtt"], list):
                return Short(tag="!GetAtt", value=".".join(v["Fn::GetAtt"]))
            return {k: shorten(x) for k, x in v.items()}
        if isinstance(v, list):
            return [shorten(x) for x in v]
        return v

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(Short, lambda d, s: d.represent_scalar(s["tag"], s["value"]))
    for name, t in (("old.yaml", old), ("new.yaml", new)):
        with open(f"{out}/{name}", "w") as f:
            yaml.dump(shorten(t), f, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000)
print(f"{out}: {len(old['Resources'])} -> {len(new['Resources'])} resources")
