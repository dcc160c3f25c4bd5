"""Every file the engine writes goes through distill_core/files.py (a temporary file, fsync, rename), so a page
reading a run while it trains, or a crash, never meets half a file. The engine's code is read for writes that go
around it: np.savez/savez_compressed/save, torch.save, PIL's and matplotlib's save/savefig, safetensors' save_file,
Path.write_text/write_bytes, shutil's copies, and open(...) for writing. Writing into an io.BytesIO, or into the file
that write_atomic_with hands its callback, is writing in memory. (The engine's own atomic savers are named for
their format, save_npz or save_png, so that they never read as a third-party writer given a path.)"""
import ast

import pytest

from conftest import ROOT
from distill_core.files import write_atomic_with

ENGINE = ROOT / "distill_core"
SAVERS = {"savez", "savez_compressed", "save", "savefig", "save_file"}  # called with the file to write
PATH_WRITERS = {"write_text", "write_bytes"}
SHUTIL = {"copy", "copy2", "copyfile", "copytree", "move"}
ALLOWED = {  # (file, the call as written): why it writes directly
    ("distill_core/runs/store.py", 'open(self.path / "events.jsonl", "a", buffering=1)'):
        "the events log grows a line at a time while pages read it; a reader skips a half-written last line",
    ("distill_core/runs/worker.py", 'os.fdopen(os.dup(sys.stdout.fileno()), "wb")'):
        "the worker's pipe to its parent (a dup of its stdout), not a file on disk",
}


def called(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def target(node: ast.Call) -> ast.expr | None:
    """The file a saver writes: torch.save(obj, f) and save_file(tensors, filename) name it second, the rest first."""
    for k in node.keywords:
        if k.arg in ("f", "file", "fp", "fname", "filename"):
            return k.value
    receiver = getattr(node.func, "value", None)
    second = called(node) == "save_file" or (called(node) == "save" and getattr(receiver, "id", "") == "torch")
    return node.args[int(second)] if len(node.args) > int(second) else None


def opens_for_writing(node: ast.Call) -> bool:
    modes = [k.value for k in node.keywords if k.arg == "mode"] + node.args[:2]
    mode = next((m.value for m in modes if isinstance(m, ast.Constant) and isinstance(m.value, str)), "")
    return bool(set(mode) & set("wax+"))


def in_memory(tree: ast.AST) -> set[int]:
    """The savers (by id) whose file is a buffer: a name bound to BytesIO() in the same function, or the parameter
    of a lambda given to write_atomic_with."""
    ok = set()
    for scope in ast.walk(tree):
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            buffers = {t.id for n in ast.walk(scope) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                       and called(n.value) == "BytesIO" for t in n.targets if isinstance(t, ast.Name)}
        elif (isinstance(scope, ast.Call) and called(scope) == "write_atomic_with" and len(scope.args) == 2
              and isinstance(scope.args[1], ast.Lambda)):
            buffers = {a.arg for a in scope.args[1].args.args}
        else:
            continue
        ok |= {id(n) for n in ast.walk(scope) if isinstance(n, ast.Call) and called(n) in SAVERS
               and isinstance(target(n), ast.Name) and target(n).id in buffers}
    return ok


def direct_writes(source: str) -> list[tuple[int, str]]:
    """(line, the call as written) of each write in `source` that does not go through write_atomic."""
    tree, found = ast.parse(source), []
    ok = in_memory(tree)
    to_bytes = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and (n.module or "").startswith("safetensors") for a in n.names if a.name == "save"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in ok or getattr(node.func, "id", "") in to_bytes:
            continue  # safetensors' save(tensors) returns the file's bytes
        name, receiver = called(node), getattr(node.func, "value", None)
        if ((name in SAVERS and target(node) is not None) or name in PATH_WRITERS
                or (name in SHUTIL and getattr(receiver, "id", "") == "shutil")
                or (name in ("open", "fdopen") and opens_for_writing(node))):
            found.append((node.lineno, " ".join(ast.get_source_segment(source, node).split())))
    return sorted(found)


FILES = sorted(str(p.relative_to(ROOT)) for p in ENGINE.rglob("*.py") if p.name != "files.py" or p.parent != ENGINE)


@pytest.mark.parametrize("file", FILES)
def test_the_engine_writes_files_only_through_write_atomic(file):
    found = [f"{file}:{line}: {call}" for line, call in direct_writes((ROOT / file).read_text())
             if (file, call) not in ALLOWED]
    assert not found, "write through distill_core.files (write_atomic or write_atomic_with):\n" + "\n".join(found)


def test_every_allowed_direct_write_is_still_there():
    stale = [key for key in ALLOWED if key[1] not in {call for _, call in direct_writes((ROOT / key[0]).read_text())}]
    assert not stale, f"drop these entries from ALLOWED: {stale}"


def test_the_checker_sees_a_direct_write():
    """The writes this test is for are found; the same writes into memory are not."""
    direct = '''
def f(path, x, fig, img, state, tensors):
    np.savez(path, t=x)
    np.savez_compressed(path, images=x)
    img.save(path)
    fig.savefig(path, format="png")
    torch.save(state, path)
    save_file(tensors, path)
    path.write_text("x")
    shutil.copytree(path, "b")
    with open(path, "w") as g:
        pass
    path.open("ab")
'''
    assert [line for line, _ in direct_writes(direct)] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 13]
    in_memory_ = '''
def f(path, x, fig, img, state, tensors):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    torch.save(state, buffer)
    write_atomic_with(path, lambda f: np.savez(f, t=x))
    write_atomic_with(path, lambda f: img.save(f, format="PNG"))
    write_atomic(path, save(tensors, metadata={}))
    with open(path) as g, Image.open(path) as h, safe_open(path, "pt") as k:
        pass
'''
    assert direct_writes("from safetensors.torch import save\n" + in_memory_) == []


def test_write_atomic_with_replaces_the_file_whole_or_not_at_all(tmp_path):
    path = tmp_path / "a.bin"
    write_atomic_with(path, lambda f: f.write(b"old"))

    def fails(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic_with(path, fails)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]
