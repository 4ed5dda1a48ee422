#!/usr/bin/env bash
# Theano compiles C++ at run time: it needs g++, and OpenBLAS to link its BLAS ops
# against (compat.py passes -lopenblas).  Install them with apt when we are root and
# they are missing; otherwise say what to install.
set -euo pipefail

missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
# -lopenblas links against the unversioned libopenblas.so, which only the -dev package has.
ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so (' || missing+=(libopenblas-dev)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages Theano needs: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "error: Theano needs these system packages: ${missing[*]}" >&2
    echo "  Debian/Ubuntu: sudo apt-get install ${missing[*]}" >&2
    echo "  (without OpenBLAS, set THEANO_FLAGS=blas__ldflags= to use Theano's slow fallback)" >&2
    exit 2
fi
