// The npm package of the client: imported by its name through the exports map (as
// `npm install channels-binding` users do), its manifest, and its declarations.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as direct from "../../channels_binding/static/channels_binding/client.js";
import BindingClient, * as byName from "channels-binding";
import * as bySubpath from "channels-binding/client.js";

const require = createRequire(import.meta.url);
const manifestPath = require.resolve("channels-binding/package.json");
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
const packageDir = dirname(manifestPath);
const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const declarations = readFileSync(join(packageDir, "client.d.ts"), "utf8");

describe("the npm package", () => {
  test("its name and subpath import the module shipped as a static file", () => {
    assert.equal(BindingClient, direct.BindingClient);
    assert.equal(byName.BindingError, direct.BindingError);
    assert.equal(bySubpath.default, direct.BindingClient);
    assert.deepEqual(Object.keys(byName).sort(), Object.keys(direct).sort());
  });

  test("is an ES module whose exports, types and files exist", () => {
    assert.equal(manifest.name, "channels-binding");
    assert.equal(manifest.type, "module");
    const targets = [manifest.main, manifest.types];
    for (const entry of Object.values(manifest.exports)) {
      targets.push(...(typeof entry === "string" ? [entry] : Object.values(entry)));
    }
    for (const target of [...targets, ...manifest.files]) {
      assert.ok(existsSync(join(packageDir, target)), `${target} is missing`);
    }
    for (const entry of Object.values(manifest.exports)) {
      // "types" must come first: resolvers take the first condition that matches.
      if (typeof entry === "object") assert.equal(Object.keys(entry)[0], "types");
    }
    assert.ok(manifest.files.includes("client.d.ts"));
  });

  test("its version is the Python package's, in npm's spelling", () => {
    const init = readFileSync(join(repo, "channels_binding", "__init__.py"), "utf8");
    const python = init.match(/__version__ = "([^"]+)"/)[1]; // e.g. 2.0.0.dev0, 2.0.0rc1
    const npm = python.replace(/\.?(dev|a|b|rc)(\d+)$/, (_, tag, n) => `-${tag}.${n}`);
    assert.equal(manifest.version, npm);
  });
});

describe("client.d.ts", () => {
  test("declares every export of the module", () => {
    const declared = [...declarations.matchAll(/^export declare class (\w+)/gm)].map((m) => m[1]);
    if (/^export default \w+;$/m.test(declarations)) declared.push("default");
    assert.deepEqual(declared.sort(), Object.keys(direct).sort());
  });

  test("declares every public member of BindingClient and BindingError", () => {
    const body = (name) => {
      const start = declarations.indexOf(`export declare class ${name}`);
      return declarations.slice(start, declarations.indexOf("\n}\n", start));
    };
    const declaredIn = (name) => new Set([...body(name).matchAll(/^ {2}(?:readonly )?(\w+)[<(?:]/gm)].map((m) => m[1]));
    const methods = Object.getOwnPropertyNames(direct.BindingClient.prototype);
    const fields = Object.keys(new direct.BindingClient("ws://example.test/", { WebSocket: class {} }));
    const client = declaredIn("BindingClient");
    for (const name of [...methods, ...fields].filter((name) => !name.startsWith("_"))) {
      assert.ok(client.has(name), `BindingClient.${name} is not declared`);
    }
    const error = declaredIn("BindingError");
    for (const name of Object.keys(new direct.BindingError({ code: "x" }))) {
      assert.ok(error.has(name), `BindingError.${name} is not declared`);
    }
  });
});
