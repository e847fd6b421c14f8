"""make on a default mount (no --allow-delete): a small C project is built inside the mount,
run, rebuilt after an edit, then `make clean` removes the objects it built (SPEC §6, own
creations), with uploads running every second so nothing depends on the write-back delay."""

from __future__ import annotations

import pytest

from tests.support.mount_helpers import file_keys

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

MODULES = [f"mod{i}" for i in range(8)]

MAKEFILE = """\
CC ?= cc
OBJS = main.o {objs}
app: $(OBJS)
\t$(CC) -o $@ $(OBJS)
%.o: %.c common.h
\t$(CC) -c -o $@ $<
clean:
\trm -f app $(OBJS)
.PHONY: clean
"""


def _write_project(root) -> None:
    root.mkdir()
    (root / "Makefile").write_text(MAKEFILE.format(objs=" ".join(f"{m}.o" for m in MODULES)))
    (root / "common.h").write_text("".join(f"int {m}(int);\n" for m in MODULES))
    for i, m in enumerate(MODULES):
        (root / f"{m}.c").write_text(f'#include "common.h"\nint {m}(int x) {{ return x + {i}; }}\n')
    calls = " + ".join(f"{m}(1)" for m in MODULES)
    (root / "main.c").write_text(f'#include <stdio.h>\n#include "common.h"\n'
                                 f'int main(void) {{ printf("%d\\n", {calls}); return 0; }}\n')


def test_make_build_edit_rebuild_clean(mount, run, s3, bucket):
    m = mount("--write-back-delay", "1")
    proj = m.path("proj")
    _write_project(proj)
    run(["make", "-s"], cwd=proj)
    assert run([str(proj / "app")]).stdout == f"{sum(1 + i for i in range(len(MODULES)))}\n"
    m.sync()  # the objects and the binary are in the bucket now
    assert {"proj/app", "proj/main.o", "proj/mod0.o"} <= file_keys(s3, bucket)

    (proj / "mod3.c").write_text('#include "common.h"\nint mod3(int x) { return x + 100; }\n')
    run(["make", "-s"], cwd=proj)  # relinks app over the uploaded one
    assert run([str(proj / "app")]).stdout == f"{sum(1 + i for i in range(len(MODULES))) + 97}\n"
    m.sync()

    run(["make", "-s", "clean"], cwd=proj)
    sources = {"proj/Makefile", "proj/common.h", "proj/main.c"} | {f"proj/{x}.c" for x in MODULES}
    assert {p.name for p in proj.iterdir()} == {k.removeprefix("proj/") for k in sources}
    m.sync()
    assert file_keys(s3, bucket) == sources
