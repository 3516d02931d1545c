#!/usr/bin/env bash
# Prints the path of a Python that Django 6 runs on (3.13 preferred, then 3.12), or fails.
for candidate in python3.13 python3.12 \
    /root/.pyenv/versions/3.13*/bin/python3.13 /root/.pyenv/versions/3.12*/bin/python3.12 \
    /usr/local/bin/python3.13 /usr/bin/python3.13 /usr/local/bin/python3.12 /usr/bin/python3.12; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if "$path" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
    echo "$path"; exit 0
  fi
done
echo "ZeroTP needs Python 3.13 or 3.12 (Django 6); neither was found on this machine." >&2
exit 1
