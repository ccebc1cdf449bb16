// JUnit XML for CI systems (GitHub Actions, GitLab, Jenkins read it): one testsuite per claims file, one testcase
// per claim; a failed claim is a <failure>, a claim the Result cannot settle (or a file that cannot be run) an <error>.
import type { ClaimReport } from './state';
import { describeLastPass } from './state';
import { escapeXmlKeepingApostrophes } from '../../shared/markup';

export interface SuiteReport {
  file: string;
  /** Set when the file could not be parsed or run: the suite holds one errored testcase saying why. */
  error?: string;
  reports: ClaimReport[];
  seconds: number;
}

// Every attribute here is double-quoted: apostrophes stay as they are.
const escape = escapeXmlKeepingApostrophes;

export function junitXml(suites: readonly SuiteReport[], timestamp = new Date()): string {
  const count = (suite: SuiteReport, status: string) => suite.reports.filter((r) => r.outcome.status === status).length;
  const totals = { tests: 0, failures: 0, errors: 0, seconds: 0 };
  const body = suites.map((suite) => {
    const tests = suite.error ? 1 : suite.reports.length;
    const failures = count(suite, 'failed');
    const errors = suite.error ? 1 : count(suite, 'unverified');
    totals.tests += tests;
    totals.failures += failures;
    totals.errors += errors;
    totals.seconds += suite.seconds;
    const cases = suite.error
      ? [
          `    <testcase name="(claims file)" classname="${escape(suite.file)}" file="${escape(suite.file)}" time="0">\n      <error type="input" message="${escape(suite.error.split('\n')[0])}">${escape(suite.error)}</error>\n    </testcase>`,
        ]
      : suite.reports.map(({ entry, outcome, lastPass }) => {
          const open = `    <testcase name="${escape(entry.name)}" classname="${escape(suite.file)}" file="${escape(suite.file)}" line="${entry.line}" time="0"`;
          if (outcome.status === 'passed') return `${open}/>`;
          const detail = [`expected: ${outcome.expected}`, `actual:   ${outcome.actual}`, ...(lastPass ? [describeLastPass(lastPass)] : [])].join('\n');
          const tag = outcome.status === 'failed' ? 'failure' : 'error';
          const message = outcome.status === 'failed' ? `expected ${outcome.expected}; actual ${outcome.actual}` : outcome.actual;
          return `${open}>\n      <${tag} type="${outcome.status === 'failed' ? 'claim' : 'unverified'}" message="${escape(message)}">${escape(detail)}</${tag}>\n    </testcase>`;
        });
    return (
      `  <testsuite name="${escape(suite.file)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="0" time="${suite.seconds.toFixed(3)}" timestamp="${timestamp.toISOString().replace(/\.\d+Z$/, '')}">\n` +
      `${cases.join('\n')}\n  </testsuite>`
    );
  });
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="atp test" tests="${totals.tests}" failures="${totals.failures}" errors="${totals.errors}" time="${totals.seconds.toFixed(3)}">\n` +
    `${body.join('\n')}\n</testsuites>\n`
  );
}
