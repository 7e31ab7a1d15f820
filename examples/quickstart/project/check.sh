#!/bin/sh
# The guard: the notes must keep their title and at least four bullet points.
head -1 src/notes.md | grep -q '^# Release notes' || { echo "title missing"; exit 1; }
[ "$(grep -c '^- ' src/notes.md)" -ge 4 ] || { echo "fewer than four bullets"; exit 1; }
