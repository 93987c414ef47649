// Compile a standard-JSON request (stdin) with the pinned npm `solc` and write the output to argv[2].
// The solcjs CLI exits before a piped stdout drains (output over 64 KiB is cut), hence this wrapper; it
// resolves imports from the repository and node_modules, as `--base-path . --include-path node_modules` would.
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const root = path.resolve(__dirname, "..");
function findImports(name) {
  for (const base of [root, path.join(root, "node_modules")]) {
    const file = path.join(base, name);
    if (file.startsWith(base) && fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `import not found: ${name}` };
}

const input = fs.readFileSync(0, "utf8");
const output = solc.compile(input, { import: findImports });
fs.writeFileSync(process.argv[2], output);
