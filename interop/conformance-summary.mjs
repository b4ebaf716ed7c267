#!/usr/bin/env node
// Summarise one run of the conformance suite in server mode (see run-conformance.sh).
//
//   conformance-summary.mjs --raw DIR --log FILE --suite NAME --url URL --exit N [--strict]
//                           [--expect SCENARIO]...
//
// DIR holds what the suite wrote with `-o DIR`: one `server-<scenario>-<timestamp>/checks.json`
// per scenario, an array of checks whose status is SUCCESS, FAILURE, WARNING, INFO or SKIPPED.
// FILE is the suite's console output; its `=== Running scenario: NAME ===` lines (and the
// --expect arguments) name the scenarios that should have produced a checks.json.
//
// A scenario passes when it has no FAILURE check (the suite's own exit-code rule); with --strict
// a WARNING fails it too (the rule the suite applies with --expected-failures). A scenario that
// started but left no checks.json (the suite crashed or was killed) is reported as `error`.
//
// Prints one JSON document to stdout and one line per scenario to stderr; exits 0 when every
// scenario passed, else 1.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const opts = { expect: [], strict: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const key = argv[i].replace(/^--/, '');
  if (key === 'strict') opts.strict = true;
  else if (key === 'expect') opts.expect.push(argv[++i]);
  else opts[key] = argv[++i];
}

const STAMP = /-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/;
const found = new Map(); // scenario -> checks.json path (the latest run wins)
if (existsSync(opts.raw)) {
  for (const entry of readdirSync(opts.raw).sort()) {
    const file = join(opts.raw, entry, 'checks.json');
    if (entry.startsWith('server-') && STAMP.test(entry) && existsSync(file)) {
      found.set(entry.slice('server-'.length).replace(STAMP, ''), file);
    }
  }
}

const started = [];
if (opts.log && existsSync(opts.log)) {
  for (const m of readFileSync(opts.log, 'utf8').matchAll(/^=== Running scenario: (\S+) ===$/gm)) started.push(m[1]);
}
const names = [...new Set([...opts.expect, ...started, ...found.keys()])];

const scenarios = names.map((scenario) => {
  const file = found.get(scenario);
  if (!file) {
    return { scenario, result: 'error', error: 'no checks.json: the suite crashed, timed out or did not run it' };
  }
  let checks;
  try {
    checks = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    return { scenario, result: 'error', error: `unreadable ${file}: ${e.message}` };
  }
  const counts = { SUCCESS: 0, FAILURE: 0, WARNING: 0, INFO: 0, SKIPPED: 0 };
  for (const c of checks) counts[c.status] = (counts[c.status] ?? 0) + 1;
  const brief = (c) => ({ id: c.id, name: c.name, message: c.errorMessage ?? c.description });
  const failures = checks.filter((c) => c.status === 'FAILURE').map(brief);
  const warnings = checks.filter((c) => c.status === 'WARNING').map(brief);
  const fail = failures.length > 0 || (opts.strict && warnings.length > 0);
  return { scenario, result: fail ? 'fail' : 'pass', counts, failures, warnings, checks_file: file };
});

const passed = scenarios.filter((s) => s.result === 'pass').length;
const summary = {
  suite: opts.suite,
  url: opts.url,
  strict: opts.strict,
  suite_exit_code: Number(opts.exit),
  total: scenarios.length,
  passed,
  failed: scenarios.length - passed,
  scenarios,
};

for (const s of scenarios) {
  const tag = s.result.toUpperCase().padEnd(5);
  const detail =
    s.result === 'error'
      ? s.error
      : `${s.counts.SUCCESS} ok, ${s.counts.FAILURE} failed, ${s.counts.WARNING} warnings` +
        [...s.failures, ...s.warnings].map((c) => `\n        ${c.id}: ${c.message}`).join('');
  console.error(`${tag} ${s.scenario}: ${detail}`);
}
console.error(`${passed}/${scenarios.length} scenarios passed (${opts.suite} against ${opts.url})`);
console.log(JSON.stringify(summary, null, 2));
process.exit(scenarios.length > 0 && passed === scenarios.length ? 0 : 1);
