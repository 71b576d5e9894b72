// Diffs two CloudFormation templates (JSON) the way `cdk diff` does, printing the report.
// Usage: node cdk-diff.js old.json new.json
const fs = require('fs');
const { fullDiff, formatDifferences } = require('@aws-cdk/cloudformation-diff');

const [oldPath, newPath] = process.argv.slice(2);
const oldT = JSON.parse(fs.readFileSync(oldPath, 'utf8'));
const newT = JSON.parse(fs.readFileSync(newPath, 'utf8'));
const diff = fullDiff(oldT, newT);
formatDifferences(process.stdout, diff);
process.exitCode = diff.isEmpty ? 0 : 2;
