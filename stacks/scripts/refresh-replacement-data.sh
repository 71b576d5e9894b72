#!/usr/bin/env bash
# Regenerates stacks/data/replacement.tsv: for every CloudFormation resource type, the properties
# whose change replaces the resource ("always") or may replace it ("maybe").
#
# Source: the npm package @aws-cdk/aws-service-spec (Apache-2.0), whose db.json.gz is built from
# the CloudFormation resource provider schemas (createOnlyProperties and friends).
#
#   stacks/scripts/refresh-replacement-data.sh [version]     # default: latest
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-latest}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@aws-cdk/aws-service-spec@$version" >/dev/null && tar xzf ./*.tgz)
python3 - "$work/package" "$here/data/replacement.tsv" <<'PY'
import gzip, json, sys
pkg, out = sys.argv[1], sys.argv[2]
meta = json.load(open(f"{pkg}/package.json"))
db = json.load(gzip.open(f"{pkg}/db.json.gz"))
rows = {}
for r in db["schema"]["resource"]["entities"]:
    t = r.get("cloudFormationType")
    if not t:
        continue
    always = sorted(p for p, d in r.get("properties", {}).items() if d.get("causesReplacement") == "yes")
    maybe = sorted(p for p, d in r.get("properties", {}).items() if d.get("causesReplacement") == "maybe")
    rows[t] = (always, maybe)
with open(out, "w") as f:
    f.write(f"# source\t{meta['name']}@{meta['version']}\t{meta.get('license', '')}\n")
    f.write("# type\tproperties that always replace\tproperties that may replace\n")
    for t in sorted(rows):
        a, m = rows[t]
        f.write(f"{t}\t{','.join(a)}\t{','.join(m)}\n")
print(f"{out}: {len(rows)} resource types from {meta['name']}@{meta['version']}")
PY
