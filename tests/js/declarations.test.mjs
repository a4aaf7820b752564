// hub-client.d.ts stays in step with hub-client.js: every export and HubClient method the
// declarations name exists in the module, and every public one the module has is declared.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

import { loadModule } from "./load.mjs";

const module = await loadModule("../../hub/static/hub/hub-client.js");
const dts = await readFile(new URL("../../hub/static/hub/hub-client.d.ts", import.meta.url), "utf8");

const declaredExports = [...dts.matchAll(/^export (?:declare )?(?:function|class|const) (\w+)/gm)].map((m) => m[1]);
const classBody = dts.slice(dts.indexOf("export class HubClient"), dts.indexOf("\n}\n", dts.indexOf("export class HubClient")));
const declaredMethods = [...classBody.matchAll(/^  (\w+)(?:<[^>]*>)?\(/gm)].map((m) => m[1]).filter((n) => n !== "constructor");

test("every declared export exists", () => {
  assert.ok(declaredExports.length >= 5);
  for (const name of declaredExports) assert.ok(name in module, `${name} is declared but not exported`);
  assert.ok(dts.includes("export default"), "the default export is declared");
});

test("every module export is declared", () => {
  for (const name of Object.keys(module)) {
    if (name === "default") continue;
    assert.ok(declaredExports.includes(name), `${name} is exported but not declared`);
  }
});

test("HubClient's public methods and the declared ones agree", () => {
  const proto = module.HubClient.prototype;
  const actual = new Set();
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      const desc = Object.getOwnPropertyDescriptor(p, name);
      if (name !== "constructor" && !name.startsWith("_") && typeof desc.value === "function") actual.add(name);
    }
  }
  for (const name of declaredMethods) assert.ok(actual.has(name), `${name}() is declared but missing`);
  for (const name of actual) assert.ok(declaredMethods.includes(name), `${name}() exists but is not declared`);
});
