#!/usr/bin/env python3
"""Checks that the hand-written Swift only uses API the generated Swift has.

No Swift compiler runs where this SDK is built, so scripts/mobile-test.sh runs this text
check instead. It verifies, against the generated ReproLineBindings.swift:

* `ReproLineBindings.X` names a generated type or function; `ReproLineBindings.f(a:b:)`
  and `ReproLineBindings.T(a:)` match a generated function / initializer's labels;
* `native.m(a:b:)` / `sdk.m(a:b:)` (the wrapper's names for generated `ReproLine` and
  `ReproLineSdk` objects) match a method of that generated class, labels included
  (defaulted parameters may be omitted);
* `T.Case(label:)` and `case .Case` / `.Case(` patterns name enum cases that exist
  (generated enums, or enums declared in the checked files themselves);
* a class conforming to a generated protocol implements each of its `func`s with the same labels.

Usage: check-wrapper-api.py GENERATED.swift WRAPPER.swift [MORE.swift ...]
"""

import re
import sys

TYPE_DECL = re.compile(r"^(?:public |open |internal |private |fileprivate )?(?:final )?(class|struct|enum|protocol)\s+(\w+)", re.M)
FUNC_DECL = re.compile(r"\bfunc\s+(\w+)\s*\(")
INIT_DECL = re.compile(r"\binit\s*\(")
CASE_DECL = re.compile(r"^\s*case\s+(\w+)(\s*\(|\s*$|\s*,)", re.M)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return text


def balanced(text, start):
    """text[start] is '('; returns the contents up to the matching ')'."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return text[start + 1:]


def split_top(args):
    parts, depth, cur, in_str = [], 0, "", False
    for c in args:
        if c == '"':
            in_str = not in_str
        if not in_str:
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif c == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
        cur += c
    if cur.strip():
        parts.append(cur)
    return parts


def param_labels(params):
    """Declared parameters -> [(label or None, has_default)]."""
    out = []
    for p in split_top(params):
        head = p.split(":", 1)[0].split()
        if not head:
            continue
        label = None if head[0] == "_" else head[0]
        out.append((label, "=" in p.split(":", 1)[1] if ":" in p else False))
    return out


def call_labels(args):
    out = []
    for a in split_top(args):
        m = re.match(r"\s*(\w+)\s*:(?!:)", a)
        out.append(m.group(1) if m else None)
    return out


def matches(signature, labels):
    i = 0
    for label, has_default in signature:
        if i < len(labels) and labels[i] == label:
            i += 1
        elif has_default:
            continue
        else:
            return False
    return i == len(labels)


def parse_generated(text):
    text = strip_comments(text)
    types = {}  # name -> {"kind", "funcs": {name: [sig]}, "inits": [sig], "cases": {name: sig}}
    free_funcs = {}
    decls = [(m.start(), m.group(1), m.group(2)) for m in TYPE_DECL.finditer(text)]
    # Top-level functions start at column 0 with `public func`.
    for m in re.finditer(r"^public func\s+(\w+)\s*\(", text, re.M):
        sig = param_labels(balanced(text, m.end() - 1))
        free_funcs.setdefault(m.group(1), []).append(sig)
    for idx, (pos, kind, name) in enumerate(decls):
        end = decls[idx + 1][0] if idx + 1 < len(decls) else len(text)
        body = text[pos:end]
        # Cut at the first top-level `public func` after the type (free functions follow some types).
        cut = re.search(r"^public func ", body, re.M)
        if cut:
            body = body[:cut.start()]
        t = types.setdefault(name, {"kind": kind, "funcs": {}, "inits": [], "cases": {}})
        for m in FUNC_DECL.finditer(body):
            t["funcs"].setdefault(m.group(1), []).append(param_labels(balanced(body, m.end() - 1)))
        for m in INIT_DECL.finditer(body):
            t["inits"].append(param_labels(balanced(body, m.end() - 1)))
        if kind == "enum":
            for m in CASE_DECL.finditer(body):
                sig = []
                if m.group(2).strip() == "(":
                    sig = param_labels(balanced(body, m.end() - 1))
                t["cases"][m.group(1)] = sig
    return types, free_funcs


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    types, free_funcs = parse_generated(open(argv[1], encoding="utf-8").read())
    if "ReproLine" not in types or not types["ReproLine"]["funcs"]:
        print(f"check-wrapper-api: no ReproLine class in {argv[1]}")
        return 1
    all_cases = {c for t in types.values() for c in t["cases"]}
    errors = []
    checked = 0
    for path in argv[2:]:
        raw = open(path, encoding="utf-8").read()
        text = strip_comments(raw)
        own_types = {m.group(2) for m in TYPE_DECL.finditer(text)}
        own_cases = set()
        for m in TYPE_DECL.finditer(text):
            if m.group(1) == "enum":
                end = text.find("\n}", m.end())
                own_cases |= {c.group(1) for c in CASE_DECL.finditer(text[m.end():end])}
        aliases = dict(re.findall(r"typealias\s+(\w+)\s*=\s*ReproLineBindings\.(\w+)", text))

        def line(pos):
            return f"{path}:{text.count(chr(10), 0, pos) + 1}"

        # ReproLineBindings.X and ReproLineBindings.X(...)
        for m in re.finditer(r"\bReproLineBindings\.(\w+)(\s*\()?", text):
            name, is_call = m.group(1), bool(m.group(2))
            checked += 1
            if name in types:
                if is_call:
                    labels = call_labels(balanced(text, m.end() - 1))
                    if not any(matches(s, labels) for s in types[name]["inits"]):
                        errors.append(f"{line(m.start())}: no init {name}({''.join((l or '_') + ':' for l in labels)})")
            elif name in free_funcs:
                if is_call:
                    labels = call_labels(balanced(text, m.end() - 1))
                    if not any(matches(s, labels) for s in free_funcs[name]):
                        errors.append(f"{line(m.start())}: no function {name}({''.join((l or '_') + ':' for l in labels)})")
            else:
                errors.append(f"{line(m.start())}: ReproLineBindings has no {name}")
        # native.method(...) and sdk.method(...): the wrapper's names for generated objects.
        for var, cls in (("native", "ReproLine"), ("sdk", "ReproLineSdk")):
            methods = types.get(cls, {}).get("funcs", {})
            for m in re.finditer(r"\b" + var + r"\.(\w+)\s*\(", text):
                checked += 1
                name = m.group(1)
                labels = call_labels(balanced(text, m.end() - 1))
                if name not in methods:
                    errors.append(f"{line(m.start())}: generated {cls} has no method {name}")
                elif not any(matches(s, labels) for s in methods[name]):
                    errors.append(f"{line(m.start())}: {cls}.{name} has no labels {labels}")
        # Alias.Case(...) for aliases of generated enums
        for m in re.finditer(r"\b(\w+)\.([A-Za-z]\w*)\s*\(", text):
            target = aliases.get(m.group(1))
            if target and types.get(target, {}).get("kind") == "enum":
                checked += 1
                case = m.group(2)
                cases = types[target]["cases"]
                if case not in cases:
                    errors.append(f"{line(m.start())}: {target} has no case {case}")
                elif not matches(cases[case], call_labels(balanced(text, m.end() - 1))):
                    errors.append(f"{line(m.start())}: {target}.{case} labels differ")
        # case .X patterns and .X( / .X) enum literals must be a known case somewhere.
        for m in re.finditer(r"(?:\bcase\s+|,\s*)\.(\w+)|\b(?:return|==|XCTAssertEqual\([^,]*,)\s*\.(\w+)", text):
            name = m.group(1) or m.group(2)
            checked += 1
            if name not in all_cases and name not in own_cases:
                errors.append(f"{line(m.start())}: no enum case .{name} in the generated Swift")
            elif name not in own_cases and text[m.end():m.end() + 1] == "(":
                args = balanced(text, m.end())
                if not re.match(r"\s*let\b", args):
                    labels = call_labels(args)
                    sigs = [t["cases"][name] for t in types.values() if name in t["cases"]]
                    if not any(matches(sig, labels) for sig in sigs):
                        errors.append(f"{line(m.start())}: no enum case .{name} with labels {labels}")
        # Conformance to generated protocols.
        for m in re.finditer(r"\bclass\s+(\w+)\s*:\s*([^{]+)\{", text):
            for proto in re.findall(r"(?:ReproLineBindings\.)?(\w+)", m.group(2)):
                proto = aliases.get(proto, proto)
                if types.get(proto, {}).get("kind") != "protocol" or proto in own_types:
                    continue
                body = text[m.end():text.find("\n}", m.end())]
                for fname, sigs in types[proto]["funcs"].items():
                    checked += 1
                    impl = [param_labels(balanced(body, f.end() - 1)) for f in FUNC_DECL.finditer(body) if f.group(1) == fname]
                    if not any([l for l, _ in s] == [l for l, _ in i] for s in sigs for i in impl):
                        errors.append(f"{line(m.start())}: {m.group(1)} does not implement {proto}.{fname}")
    for e in errors:
        print(f"check-wrapper-api: {e}")
    print(f"check-wrapper-api: {checked} uses checked, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
