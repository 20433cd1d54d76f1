#!/usr/bin/env python3
"""embed.py INPUT OUTPUT SYMBOL: writes a C file defining
`const char SYMBOL[]` (the file's bytes plus a NUL) and `SYMBOL_len`.
Used at build time so the binary serves docs/openapi.yaml without a path."""
import sys

src, dst, sym = sys.argv[1:4]
data = open(src, "rb").read()
with open(dst, "w") as f:
    f.write("/* Generated from %s by scripts/embed.py; do not edit. */\n" % src.split("/")[-1])
    f.write("#include <stddef.h>\n")
    f.write("const char %s[] = {\n" % sym)
    for i in range(0, len(data), 16):
        f.write("  " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    f.write("  0x00\n};\n")
    f.write("const size_t %s_len = %d;\n" % (sym, len(data)))
