// The I/O board simulator: runs the firmware's main.py under real MicroPython (the WebAssembly
// port) with the fake `machine` module of ../sim, until the board halts.
// Usage: node board_sim.mjs ROOT_DIR [PIN=LEVEL ...]
//   ROOT_DIR holds the board's files as they would be on its flash (main.py, version.json, ...);
//   PIN=LEVEL sets an input pin before the board starts (e.g. 22=0 holds the safe-mode pin low).
// stdin, one JSON object per line:   {"uart": ID, "hex": "..."}  bytes arriving on a UART
//                                    {"pin": ID, "level": 0|1}   the outside world drives a pin
//                                    {"uart_fail": ID, "text": "..."}  reads from a UART raise
// stdout, one JSON object per line:  {"uart": ID, "hex": "..."} bytes the board wrote, {"pwm": PIN,
//   "duty"|"freq": N}, {"pin": ID, "level": N}, {"log": "..."}, {"reset": "watchdog"|...}.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { createInterface } from "node:readline";
import { prepareFlash } from "./sim_flash.mjs";

const root = process.argv[2];
if (!root) {
  console.error("usage: node board_sim.mjs ROOT_DIR");
  process.exit(2);
}
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");
process.stdout.on("error", () => process.exit(0)); // the harness went away
let watchdog = null; // {timeout, fedAt}
const halt = (code) => process.exit(code);

const mp = await loadMicroPython({
  stdout: (text) => say({ log: text }),
  stderr: (text) => say({ log: text, stream: "stderr" }),
});
mp.registerJsModule("simhw", {
  emit: (json) => process.stdout.write(json + "\n"),
  wdt_start: (timeout) => { watchdog = { timeout, fedAt: Date.now() }; },
  wdt_feed: () => { if (watchdog) watchdog.fedAt = Date.now(); },
  halt,
});

prepareFlash(mp, root);

setInterval(() => {
  if (watchdog && Date.now() - watchdog.fedAt > watchdog.timeout) {
    say({ reset: "watchdog" });
    halt(3);
  }
}, 50);

const machine = mp.pyimport("machine");
createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if ("uart" in command) machine.sim_uart_feed(command.uart, command.hex);
  else if ("pin" in command) machine.sim_set_pin(command.pin, command.level);
  else if ("uart_fail" in command) machine.sim_uart_fail(command.uart_fail, command.text);
}).on("close", () => halt(0));

for (const setting of process.argv.slice(3)) {
  const [pin, level] = setting.split("=").map(Number);
  machine.sim_set_pin(pin, level);
}
try {
  mp.runPython("import main");
} catch (error) {
  say({ log: String(error), stream: "stderr" });
  halt(1);
}
