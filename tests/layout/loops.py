"""Which files of the library, or of prewarmd, call each other in loops (issue 14's layout rule).

Usage: loops.py OBJECT_DIR

Reads the defined and undefined symbols of every object file of the library (nm), draws an edge
A -> B when A uses a symbol B defines, and prints every cycle among the files (the strongly
connected components with more than one file). Exits 1 if there is one.
"""
import os
import subprocess
import sys


def symbols(path):
    out = subprocess.run(["nm", "--defined-only", "-g", path], capture_output=True, text=True, check=True).stdout
    defined = {line.split()[-1] for line in out.splitlines() if len(line.split()) == 3}
    out = subprocess.run(["nm", "-u", path], capture_output=True, text=True, check=True).stdout
    used = {line.split()[-1] for line in out.splitlines() if line.strip()}
    return defined, used


def components(graph):
    """Tarjan's strongly connected components."""
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            result.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return result


def name_of(obj):
    base = os.path.basename(obj)
    return base.split(".c.o")[0].replace("src_lib_", "").replace("src_daemon_", "").replace("..", "")


def main():
    objdir = sys.argv[1]
    objs = sorted(os.path.join(objdir, f) for f in os.listdir(objdir) if f.endswith(".o") and "pb-c" not in f)
    table = {name_of(o): symbols(o) for o in objs}
    owner = {}
    for name, (defined, _) in table.items():
        for sym in defined:
            owner[sym] = name
    graph = {name: sorted({owner[s] for s in used if s in owner and owner[s] != name})
             for name, (_, used) in table.items()}
    loops = [c for c in components(graph) if len(c) > 1]
    for c in loops:
        print("loop: " + " <-> ".join(c))
    print("%d files, %d loop(s)" % (len(graph), len(loops)))
    return 1 if loops else 0


if __name__ == "__main__":
    sys.exit(main())
