// The W&B key found where W&B's Python client finds it: WANDB_API_KEY, else the netrc entry of the server's host
// (`wandb login` writes ~/.netrc); a malformed or unreadable netrc is an InputError naming the file and line, never
// showing the key.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { findWandbKey, netrcPath, parseNetrc, wandbTargetForCommandLine } from '../../src/lib/wandb/wandbKey';

const root = mkdtempSync(join(tmpdir(), 'atp-netrc-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
function home(netrc?: string): string {
  const dir = join(root, `home-${counter++}`);
  mkdirSync(dir);
  if (netrc !== undefined) writeFileSync(join(dir, '.netrc'), netrc);
  return dir;
}

const KEY = 'a'.repeat(40);
const OTHER = 'b'.repeat(40);

test('the key is WANDB_API_KEY, else the password of api.wandb.ai in ~/.netrc as `wandb login` writes it', () => {
  const written = home(`machine api.wandb.ai\n  login user\n  password ${KEY}\n`);
  assert.deepEqual(findWandbKey({}, written), { apiKey: KEY, keySource: `the netrc file ${join(written, '.netrc')} (machine api.wandb.ai)` });
  assert.deepEqual(findWandbKey({ WANDB_API_KEY: ` ${OTHER} ` }, written), { apiKey: OTHER, keySource: 'WANDB_API_KEY' });
  assert.equal(findWandbKey({}, home()), undefined);
  // A self-hosted server: its host's entry (the port dropped, as requests' get_netrc_auth does), else the default entry.
  const both = home(`machine api.wandb.ai login user password ${KEY}\nmachine wandb.example.com login user password ${OTHER}\n`);
  assert.equal(findWandbKey({ WANDB_BASE_URL: 'https://wandb.example.com:8443' }, both)?.apiKey, OTHER);
  const fallback = home(`machine other.host password x\ndefault login user password ${OTHER}\n`);
  assert.match(findWandbKey({}, fallback)!.keySource, /its default entry/);
  assert.equal(findWandbKey({ WANDB_BASE_URL: 'http://127.0.0.1:9' }, home(`machine api.wandb.ai password ${KEY}\n`)), undefined);
  // NETRC names the file.
  const elsewhere = join(home(), 'my-netrc');
  writeFileSync(elsewhere, `# comment\nmachine api.wandb.ai\n\tlogin "user name"\n\tpassword ${KEY}\n`);
  assert.equal(netrcPath({ NETRC: elsewhere }), elsewhere);
  assert.equal(findWandbKey({ NETRC: elsewhere }, home())?.apiKey, KEY);
});

test('macdef blocks and account fields are read past, as Python netrc does', () => {
  const parsed = parseNetrc(`macdef init\ncd /x\nput y\n\nmachine api.wandb.ai account acct login u password ${KEY}\n`, 'f');
  assert.deepEqual(parsed.machines.get('api.wandb.ai'), { login: 'u', password: KEY });
});

test('a malformed or unreadable netrc is an InputError naming the file and line, never the key', () => {
  const cases: Array<[string, RegExp]> = [
    [`password ${KEY}\n`, /line 1: "password" comes before any "machine"/],
    [`machine api.wandb.ai\n  login user\n  pasword ${KEY}\n`, /line 3: expected machine, default/],
    [`machine api.wandb.ai\n  login user\n  password`, /line 3: "password" has no value/],
    [`machine api.wandb.ai password "${KEY}`, /line 1: a quoted value is not closed/],
  ];
  for (const [text, pattern] of cases) {
    const dir = home(text);
    assert.throws(
      () => findWandbKey({}, dir),
      (error: unknown) =>
        error instanceof InputError &&
        error.field === 'wandbKey' &&
        error.message.includes(`the netrc file ${join(dir, '.netrc')} is malformed`) &&
        pattern.test(error.message) &&
        !`${error.message}\n${error.stack}`.includes(KEY),
      text,
    );
  }
  const dir = home();
  mkdirSync(join(dir, '.netrc'));
  assert.throws(() => findWandbKey({}, dir), /the netrc file .*\.netrc cannot be read \(.*\.netrc is not a regular file \(a folder\)\)/);
  // A FIFO (or /dev/zero) as ~/.netrc is refused at once, never read without end (the one read helper).
  if (process.platform !== 'win32') {
    const fifo = home();
    execFileSync('mkfifo', [join(fifo, '.netrc')]);
    assert.throws(() => findWandbKey({}, fifo), /\.netrc is not a regular file \(a FIFO\)/);
  }
  // WANDB_API_KEY set: the netrc is not read at all.
  assert.equal(findWandbKey({ WANDB_API_KEY: KEY }, dir)?.apiKey, KEY);
});

test('the command line target takes the netrc key and says where it came from; without any key it is refused', () => {
  const dir = home(`machine api.wandb.ai login user password ${KEY}\n`);
  const netrc = join(dir, '.netrc');
  const target = wandbTargetForCommandLine('team/proj', { NETRC: netrc });
  assert.deepEqual(target, { entity: 'team', project: 'proj', apiKey: KEY, keySource: `the netrc file ${netrc} (machine api.wandb.ai)` });
  assert.throws(
    () => wandbTargetForCommandLine('proj', { NETRC: join(dir, 'none') }),
    (error: unknown) => error instanceof InputError && error.field === 'wandbKey' && /WANDB_API_KEY .*wandb login/.test(error.message),
  );
});
