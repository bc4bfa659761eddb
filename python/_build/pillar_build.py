"""In-tree PEP 517 / PEP 660 build backend for the pillar Python package.

Why not setuptools: pip builds in an isolated environment and downloads the backend
named in [build-system] requires from PyPI, which fails offline even when Debian's
python3-setuptools is installed. This backend needs nothing but the standard library,
so `pip install ./python` works offline with Debian's python3 (in a venv made with
--system-site-packages, which sees Debian's python3-numpy).

The wheel holds the pure-Python package pillar/ and, when one is found at build time,
libpillar.so (from $PILLAR_LIB, else ../build/libpillar.so of the source checkout) so
that the installed package runs without further set-up; the wheel is then tagged for
this platform. Without a library the wheel is pure and pillar finds libpillar at run
time (PILLAR_LIB, the build directory, or the system's library path).
"""
import base64
import hashlib
import io
import os
import re
import sysconfig
import tarfile
import time
import zipfile

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/


def _project():
    text = _read(os.path.join(_ROOT, "pyproject.toml")).decode("utf-8")
    try:
        import tomllib  # Python 3.11+

        return tomllib.loads(text)["project"]
    except ImportError:  # minimal reading of the few keys used below
        proj = {}
        section = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)
        for key in ("name", "version", "description", "requires-python"):
            m = re.search(r'^%s\s*=\s*"([^"]*)"' % re.escape(key), section, re.M)
            if m:
                proj[key] = m.group(1)
        m = re.search(r"^dependencies\s*=\s*\[(.*?)\]", section, re.M | re.S)
        proj["dependencies"] = re.findall(r'"([^"]+)"', m.group(1)) if m else []
        return proj


def _metadata(proj):
    lines = ["Metadata-Version: 2.1", "Name: %s" % proj["name"], "Version: %s" % proj["version"]]
    if proj.get("description"):
        lines.append("Summary: %s" % proj["description"])
    if proj.get("requires-python"):
        lines.append("Requires-Python: %s" % proj["requires-python"])
    for dep in proj.get("dependencies", []):
        lines.append("Requires-Dist: %s" % dep)
    return "\n".join(lines) + "\n"


def _library():
    """The libpillar.so to bundle, or None."""
    env = os.environ.get("PILLAR_LIB")
    cands = [env] if env else [os.path.join(_ROOT, "..", "build", "libpillar.so")]
    for c in cands:
        if c and os.path.isfile(c):
            return os.path.realpath(c)
    return None


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _package_files():
    pkg = os.path.join(_ROOT, "pillar")
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            yield os.path.join(pkg, name), "pillar/" + name


class _Wheel:
    def __init__(self, path):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.records = []

    def add(self, arcname, data, mode=0o644):
        info = zipfile.ZipInfo(arcname, date_time=time.localtime(time.time())[:6])
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.records.append("%s,sha256=%s,%d" % (arcname, digest, len(data)))

    def close(self, dist_info):
        record = dist_info + "/RECORD"
        self.records.append(record + ",,")
        self.zip.writestr(record, "\n".join(self.records) + "\n")
        self.zip.close()


def _build(wheel_directory, editable):
    proj = _project()
    name, version = proj["name"], proj["version"]
    lib = None if editable else _library()
    tag = "py3-none-any"
    if lib:
        tag = "py3-none-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")
    dist_info = "%s-%s.dist-info" % (name, version)
    filename = "%s-%s-%s.whl" % (name, version, tag)
    w = _Wheel(os.path.join(wheel_directory, filename))
    if editable:
        # PEP 660: a .pth file puts python/ on sys.path, so edits take effect at once
        w.add("__editable__.%s.pth" % name, (_ROOT + "\n").encode())
    else:
        for src, arc in _package_files():
            w.add(arc, _read(src))
        if lib:
            w.add("pillar/libpillar.so", _read(lib), 0o755)
    w.add(dist_info + "/METADATA", _metadata(proj).encode())
    w.add(dist_info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: pillar_build\nRoot-Is-Purelib: %s\nTag: %s\n"
                                 % ("false" if lib else "true", tag)).encode())
    w.close(dist_info)
    return filename


# ---------------------------------------------------------------- PEP 517 hooks

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _build(wheel_directory, editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _build(wheel_directory, editable=True)


def build_sdist(sdist_directory, config_settings=None):
    proj = _project()
    base = "%s-%s" % (proj["name"], proj["version"])
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        files = [("pyproject.toml", os.path.join(_ROOT, "pyproject.toml")),
                 ("_build/pillar_build.py", os.path.abspath(__file__))]
        files += [(arc, src) for src, arc in _package_files()]
        for arc, src in files:
            tar.add(src, arcname=base + "/" + arc)
        pkg_info = _metadata(proj).encode()
        info = tarfile.TarInfo(base + "/PKG-INFO")
        info.size = len(pkg_info)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(pkg_info))
    return filename
