"""The layering of STYLE.md section 1, checked on every include: a module includes
only its own headers and those of the modules it links (directly or through them),
as CMakeLists.txt declares them with holdd_module(name deps...). smtp/ and relay/
meet only in spool/; nothing includes upward.

The linker catches most wrong includes already, but not a header-only use (an
inline function, a struct, a constant): this test catches those too, with the file
and line. It also checks the unit tests (tests/unit/<module>/ links holdd_<module>
only) and the two mains (holdctl links only what its target_link_libraries says).

Run: python3 tests/structure/include_graph_test.py [SOURCE_DIR]; ctest runs it as
structure.include_graph. The self-test at the start proves that the checker finds a
planted wrong include, so a checker that silently checks nothing fails too."""
import re
import sys
import tempfile
from pathlib import Path

MODULE_RE = re.compile(r"^\s*holdd_module\(\s*(\w+)([^)]*)\)", re.M)
LINK_RE = re.compile(r"^\s*target_link_libraries\(\s*(holdctl|holdd)\s+PRIVATE([^)]*)\)", re.M)
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"holdd/(\w+)/([^"]+)"')

# Headers a main may include without linking their module, each with why. Empty:
# the control protocol, which holdctl and the daemon share, is a module of its own
# (protocol/, header-only, layer 1) that both link.
HEADER_ONLY = {}


def module_graph(cmake_text):
    """{module: set of modules it links directly}, from holdd_module(...) lines."""
    graph = {}
    for name, args in MODULE_RE.findall(cmake_text):
        graph[name] = {a[len("holdd_"):] for a in args.split() if a.startswith("holdd_")}
    return graph


def closure(graph, start):
    """The modules `start` may include: itself and everything it links, transitively."""
    seen, todo = {start}, [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def main_links(cmake_text):
    """{main: set of modules} for holdd and holdctl, from target_link_libraries."""
    return {name: {a[len("holdd_"):] for a in args.split() if a.startswith("holdd_")}
            for name, args in LINK_RE.findall(cmake_text)}


def includes(path):
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = INCLUDE_RE.match(line)
        if m:
            yield number, m.group(1), f"{m.group(1)}/{m.group(2)}"


def violations(root):
    """Every include that goes against the declared layering, as 'file:line: why'."""
    cmake_text = (root / "CMakeLists.txt").read_text()
    graph = module_graph(cmake_text)
    if not graph:
        return ["CMakeLists.txt: no holdd_module(...) found: the checker has nothing to check"]
    found = []

    def check(path, allowed, who, header_only=None):
        for number, module, header in includes(path):
            if module in allowed or (header_only and header in header_only):
                continue
            found.append(f"{path.relative_to(root)}:{number}: {who} includes holdd/{header}, "
                         f"but links only {', '.join(sorted(allowed)) or 'nothing of holdd'}")

    for module in graph:
        allowed = closure(graph, module)
        files = [*(root / "daemon" / module).glob("*.cpp"), *(root / "daemon" / module).glob("*.h"),
                 *(root / "include" / "holdd" / module).glob("*.h")]
        for path in sorted(files):
            check(path, allowed, f"module {module}")
        for path in sorted((root / "tests" / "unit" / module).glob("*.[ch]*")):
            check(path, allowed, f"unit tests of {module}")
    for main, linked in main_links(cmake_text).items():
        allowed = set().union(*(closure(graph, m) for m in linked)) if linked else set()
        path = root / "daemon" / f"{main}.cpp"
        if path.exists():
            check(path, allowed, main, HEADER_ONLY.get(main))
    # A module directory that CMake does not know is not checked at all: say so.
    for directory in sorted((root / "daemon").iterdir()):
        if directory.is_dir() and directory.name not in graph:
            found.append(f"daemon/{directory.name}: not a holdd_module() in CMakeLists.txt, "
                         "so its includes are not checked")
    return found


def self_test():
    """A tiny tree with one upward include and one sideways include: both found."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "CMakeLists.txt").write_text(
            "holdd_module(base spdlog::spdlog)\n"
            "holdd_module(spool holdd_base)\n"
            "holdd_module(smtp holdd_spool asio_cfg)\n"
            "holdd_module(relay holdd_spool)\n")
        for module, text in {
            "base": '#include "holdd/base/status.h"\n',
            "spool": '#include "holdd/base/status.h"\n#include "holdd/smtp/session.h"\n',  # upward
            "smtp": '#include "holdd/spool/spool.h"\n',
            "relay": '#include "holdd/spool/spool.h"\n\n#include "holdd/smtp/reply.h"\n',  # sideways
        }.items():
            (root / "daemon" / module).mkdir(parents=True)
            (root / "daemon" / module / f"{module}.cpp").write_text(text)
        found = violations(root)
        expected = ["daemon/relay/relay.cpp:3: module relay includes holdd/smtp/reply.h",
                    "daemon/spool/spool.cpp:2: module spool includes holdd/smtp/session.h"]
        assert len(found) == 2 and all(any(f.startswith(e) for f in found) for e in expected), found


def run(root):
    self_test()
    found = violations(root)
    for line in found:
        print(line)
    if found:
        print(f"include graph: {len(found)} include(s) against the layering "
              "(STYLE.md section 1; the modules' links are in CMakeLists.txt)")
        return 1
    print("include graph: every include follows the module layering")
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])))
