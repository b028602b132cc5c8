// Tokenises .story files with the extension's TextMate grammar, as VS Code does
// (vscode-textmate with the Oniguruma regex engine), and compares the scopes of every token
// with the golden files in test/golden/ (one line per token: line:column, text, scopes).
//   node test/tokenize.mjs --check FILE...   exit 1 on any difference
//   node test/tokenize.mjs --write FILE...   rewrite the golden files
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");
const here = path.dirname(fileURLToPath(import.meta.url));
const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;

await oniguruma.loadWASM(wasm);
const registry = new vsctm.Registry({
  onigLib: Promise.resolve({
    createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
    createOnigString: (s) => new oniguruma.OnigString(s),
  }),
  loadGrammar: async (scope) => scope === "source.story"
    ? vsctm.parseRawGrammar(fs.readFileSync(path.join(here, "../syntaxes/story.tmLanguage.json"), "utf8"),
                            "story.tmLanguage.json")
    : null,
});
const grammar = await registry.loadGrammar("source.story");

function scopes(text) {
  const out = [];
  let state = vsctm.INITIAL;
  text.split("\n").forEach((line, i) => {
    const result = grammar.tokenizeLine(line, state);
    for (const t of result.tokens) {
      const piece = line.slice(t.startIndex, t.endIndex);
      if (piece.trim() === "") continue;
      out.push(`${i + 1}:${t.startIndex + 1}\t${JSON.stringify(piece)}\t${t.scopes.slice(1).join(" ")}`);
    }
    state = result.ruleStack;
  });
  return out.join("\n") + "\n";
}

const [mode, ...files] = process.argv.slice(2);
let failed = 0;
for (const file of files) {
  const golden = path.join(here, "golden", path.basename(file) + ".scopes");
  const got = scopes(fs.readFileSync(file, "utf8"));
  if (mode === "--write") {
    fs.writeFileSync(golden, got);
  } else if (!fs.existsSync(golden) || fs.readFileSync(golden, "utf8") !== got) {
    const want = fs.existsSync(golden) ? fs.readFileSync(golden, "utf8").split("\n") : [];
    const diff = got.split("\n").findIndex((l, i) => l !== want[i]);
    console.error(`${path.basename(file)}: tokens differ from ${path.basename(golden)} at token ${diff + 1}:`);
    console.error(`  want: ${want[diff]}\n  got:  ${got.split("\n")[diff]}`);
    failed += 1;
  }
}
console.log(`${files.length - failed} of ${files.length} files tokenise as their golden scopes`);
process.exit(failed ? 1 : 0);
