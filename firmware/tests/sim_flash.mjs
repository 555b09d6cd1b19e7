// The simulated board's flash, shared by the board and REPL simulators: the files of ROOT (if
// given) at "/", and the fake `machine` module of ../sim in /lib; both folders go on sys.path.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function copyTree(mp, from, to) {
  for (const name of readdirSync(from)) {
    const source = join(from, name);
    const target = to === "/" ? `/${name}` : `${to}/${name}`;
    if (statSync(source).isDirectory()) {
      mp.FS.mkdir(target);
      copyTree(mp, source, target);
    } else {
      mp.FS.writeFile(target, readFileSync(source));
    }
  }
}

export function prepareFlash(mp, root) {
  if (root) copyTree(mp, root, "/");
  mp.FS.mkdir("/lib");
  mp.FS.writeFile("/lib/machine.py", readFileSync(join(here, "..", "sim", "machine.py")));
  mp.runPython("import sys\nsys.path.insert(0, '/lib')\nsys.path.insert(0, '/')");
}
