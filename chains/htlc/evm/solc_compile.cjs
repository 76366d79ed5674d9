// Compile a solc standard-JSON input read from stdin with the npm `solc` package and
// print the standard-JSON output. Used by build.py so the compiler is the pinned one.
"use strict";
const fs = require("fs");
const solc = require("solc");
if (process.argv.includes("--version")) {
  process.stdout.write(solc.version() + "\n");
} else {
  process.stdout.write(solc.compile(fs.readFileSync(0, "utf8")));
}
