#!/bin/sh
# A scripted stand-in for a coding agent (`--agent command`): it reads the prompt on stdin and
# makes one change per iteration; its last stdout line is the change description. Some turns
# are deliberately bad so every decision of the engine shows up.
cat > /dev/null
notes=src/notes.md
case "$AUTORESEARCH_ITERATION" in
  2)  echo "- TODO: add benchmarks" >> "$notes"
      echo "add a reminder about benchmarks (makes the metric worse)" ;;
  3)  echo "scratch" > scratch.txt
      sed -i '0,/TODO: /s/TODO: //' "$notes"
      echo "resolve a TODO and leave a scratch file outside the scope" ;;
  5)  sed -i '/TODO/d' "$notes"
      echo "delete every TODO line (the guard catches the lost bullets)" ;;
  *)  if [ "$AUTORESEARCH_DIRECTIVE" = rework ]; then
        echo "nothing to rework"
      else
        sed -i '0,/TODO: /s/TODO: //' "$notes"
        echo "resolve the first TODO in the notes"
      fi ;;
esac
