#!/usr/bin/env bash
# Create .venv with the locked dependencies. With --fonts also install a CJK font from Debian (the
# bulletin's PDF and charts need one); with --system the font, Chromium (browser tests) and Orthanc with its
# DICOMweb plugin (the imaging PACS); with --bench what the benchmarks drive the platform with (wrk, and
# pgbench from postgresql-client). Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--system" || "${1:-}" == "--fonts" || "${1:-}" == "--bench" ]]; then
    need=()
    [[ "${1:-}" != "--system" || -x /usr/bin/chromium ]] || need+=(chromium)
    [[ "${1:-}" != "--bench" ]] || command -v wrk >/dev/null || need+=(wrk)
    [[ "${1:-}" != "--bench" ]] || command -v pgbench >/dev/null || need+=(postgresql-client)
    fc-list 2>/dev/null | grep -qiE "wqy|noto.*cjk" || need+=(fonts-wqy-microhei)
    # the PACS of the telemedicine imaging centre (tests start and stop their own Orthanc)
    [[ "${1:-}" != "--system" || -x /usr/sbin/Orthanc ]] || need+=(orthanc)
    [[ "${1:-}" != "--system" || -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]] || need+=(orthanc-dicomweb)
    if ((${#need[@]})); then
        echo "bootstrap: installing Debian packages: ${need[*]}"
        SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    fi
fi

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            PY=$(command -v "$candidate"); break
        fi
    done
fi
[[ -n "$PY" ]] || { echo "bootstrap: Python 3.11 is required" >&2; exit 1; }

if ! command -v uv >/dev/null; then
    echo "bootstrap: installing uv"
    "$PY" -m pip install --quiet uv
fi
UV=$(command -v uv || echo "$("$PY" -m site --user-base)/bin/uv")
export UV_PYTHON_DOWNLOADS=never
"$UV" sync --frozen --python "$PY" --quiet
