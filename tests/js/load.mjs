// Imports a browser ES module from the source tree. The static files are plain `.js` with no
// package.json marking them as modules; Node >= 20.19 detects ES syntax by itself, older Node
// (Debian's 18) does not, so then the source is imported as a data: URL (always ESM).
import { readFile } from "node:fs/promises";

export async function loadModule(relativeToTests) {
  const url = new URL(relativeToTests, import.meta.url);
  try {
    return await import(url.href);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const source = await readFile(url, "utf8");
    return import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
  }
}

/** An event frame the Python suite generated from slurm_monitor/events.py (tests/js/fixtures/events). */
export async function eventFixture(name) {
  return JSON.parse(await readFile(new URL(`./fixtures/events/${name}.json`, import.meta.url), "utf8"));
}
