// A MicroPython board's REPL for the flash tool's tests: the WebAssembly port's event-driven REPL
// (the same friendly and raw REPL code as on a Pico) on stdin/stdout, byte for byte. The test
// connects it to a pseudo-terminal, so mpremote talks to it as to a board on /dev/ttyACM0.
// Usage: node repl_sim.mjs   (the flash starts empty; a soft reset, Ctrl-D, keeps its files)
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { prepareFlash } from "./sim_flash.mjs";

// Emscripten numbers errno values its own way (ENOENT is 44, not 2); a board, and mpremote's
// reading of its errors, use the usual numbers. Output is gathered per turn of the event loop and
// "OSError: 44" becomes "OSError: 2" on the way out.
const ERRNO = { 44: 2, 20: 17, 54: 20, 31: 21, 28: 22, 2: 13, 55: 39, 63: 36 };
let output = [];
const flush = () => {
  const text = Buffer.from(output).toString("latin1").replace(/OSError: (\d+)/g,
    (whole, n) => (n in ERRNO ? `OSError: ${ERRNO[n]}` : whole));
  output = [];
  process.stdout.write(Buffer.from(text, "latin1"));
};
const mp = await loadMicroPython({
  stdout: (bytes) => {
    if (!output.length) setImmediate(flush);
    output.push(...bytes);
  },
  linebuffer: false,
});
mp.registerJsModule("simhw", {
  emit: () => {},
  wdt_start: () => {},
  wdt_feed: () => {},
  halt: () => soft(),
});
prepareFlash(mp);

function soft() {
  if (!output.length) setImmediate(flush);
  output.push(...Buffer.from("MPY: soft reboot\r\n"));
  mp.replInit();
}
mp.replInit();
// The port's event-driven REPL answers raw-paste mode (Ctrl-E A Ctrl-A) but then never runs the
// pasted code, so the simulator declines raw-paste ("R\x00") the way older firmware does, and
// mpremote falls back to the plain raw REPL.
const RAW_PASTE = [0x05, 0x41, 0x01];
let held = [];
let pending = Promise.resolve();
const feed = (byte) => {
  pending = pending.then(() => mp.replProcessCharWithAsyncify(byte)).then((result) => {
    if (result) soft();
  });
};
process.stdin.on("data", (data) => {
  for (const byte of data) {
    if (byte === RAW_PASTE[held.length]) {
      held.push(byte);
      if (held.length === RAW_PASTE.length) {
        held = [];
        pending = pending.then(() => {
          if (!output.length) setImmediate(flush);
          output.push(0x52, 0x00);
        });
      }
      continue;
    }
    held.forEach(feed);
    held = [];
    feed(byte);
  }
});
// The other end went away: finish what was typed, but never linger (an orphan would spin).
process.stdin.on("end", () => {
  pending.then(() => setImmediate(() => {
    if (output.length) flush();
    process.exit(0);
  }));
  setTimeout(() => process.exit(0), 500);
});
process.stdout.on("error", () => process.exit(0));
