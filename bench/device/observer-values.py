"""Each repeat's figures of an observer-effect table (`compare --observer-effect` writes observer-effect.json):
requests/s supervised and alone, and their ratios, one line each. Usage: python3 observer-values.py FILE"""
import json
import sys

for r in json.load(open(sys.argv[1])):
    print("sup", [round(v) for v in r["supervised_per_s"]["values"]])
    print("alone", [round(v) for v in r["alone_per_s"]["values"]])
    print("ratio", [round(v, 3) for v in r["throughput_ratio"]["values"]])
    print("p99 ratio", [round(v, 3) for v in r["p99_ratio"]["values"]])
