"""Validates custom resources against CRD schemas, strictly.

usage: python3 validate.py CRD.yaml RESOURCE.yaml...

Each resource is checked against the openAPIV3Schema of its apiVersion in
the CRD, with unknown fields refused (as `kubectl apply --validate=strict`
does) except where the schema preserves them. Prints one line per resource;
exits 1 if any fails.
"""
import sys

import jsonschema
import yaml


def strict(schema):
    """Refuses properties a structural schema does not declare."""
    if isinstance(schema, dict):
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main():
    crd = yaml.safe_load(open(sys.argv[1]))
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schemas = {
        f"{group}/{v['name']}": strict(v["schema"]["openAPIV3Schema"])
        for v in crd["spec"]["versions"]
    }
    failed = False
    for path in sys.argv[2:]:
        for doc in yaml.safe_load_all(open(path)):
            if not doc or doc.get("kind") != kind:
                continue
            schema = schemas.get(doc.get("apiVersion"))
            if schema is None:
                print(f"FAIL {path}: no schema for {doc.get('apiVersion')}")
                failed = True
                continue
            errors = sorted(
                jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path)
            )
            for e in errors:
                where = ".".join(str(p) for p in e.path)
                print(f"FAIL {path}: {kind} {where}: {e.message}")
            failed |= bool(errors)
            if not errors:
                print(f"OK {path}: {kind} {doc['metadata']['name']}")
    sys.exit(1 if failed else 0)


main()
