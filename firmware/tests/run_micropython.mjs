// Runs Python files under real MicroPython (the WebAssembly port, pinned in ../package.json).
// Usage: node run_micropython.mjs SCRIPT.py [FILE ...]
// Each FILE is copied into MicroPython's filesystem: *.py files into /lib (importable), others
// into /. The script's output goes to stdout; an exception makes the exit code 1.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { readFileSync } from "node:fs";
import { basename } from "node:path";

const [script, ...files] = process.argv.slice(2);
if (!script) {
  console.error("usage: node run_micropython.mjs SCRIPT.py [FILE ...]");
  process.exit(2);
}
const mp = await loadMicroPython({
  stdout: (text) => process.stdout.write(text + "\n"),
  stderr: (text) => process.stderr.write(text + "\n"),
});
mp.FS.mkdir("/lib");
for (const file of files) {
  const target = file.endsWith(".py") ? `/lib/${basename(file)}` : `/${basename(file)}`;
  mp.FS.writeFile(target, readFileSync(file));
}
try {
  mp.runPython("import sys\nsys.path.append('/lib')\n" + readFileSync(script, "utf8"));
} catch (error) {
  console.error(String(error));
  process.exit(1);
}
