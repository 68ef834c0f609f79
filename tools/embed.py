#!/usr/bin/env python3
"""embed.py SYMBOL INPUT OUTPUT — turn a text file into a C string constant."""
import sys

sym, src, dst = sys.argv[1:4]
data = open(src, 'rb').read()
with open(dst, 'w') as f:
    f.write('/* generated from %s by tools/embed.py */\n' % src.split('/')[-1])
    f.write('const char %s[] = {\n' % sym)
    for i in range(0, len(data), 16):
        f.write('  ' + ', '.join(str(b if b < 128 else b - 256) for b in data[i:i + 16]) + ',\n')
    f.write('  0\n};\n')
