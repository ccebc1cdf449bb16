// The command-id union against package.json: a command registered but not contributed (or the reverse), or a typo
// in either, fails here rather than as a silent no-op in the editor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COMMAND_IDS, RUN_ITEM_CONTEXT } from '../../src/commands/ids';

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  contributes: { commands: Array<{ command: string }>; menus: Record<string, Array<{ command?: string }>> };
};

test('the command-id union is exactly package.json contributes.commands', () => {
  const contributed = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual([...COMMAND_IDS].sort(), contributed);
  assert.equal(new Set(COMMAND_IDS).size, COMMAND_IDS.length, 'a command id is listed twice');
});

test('every attributionPatching command a menu names is in the union', () => {
  const ids = new Set<string>(COMMAND_IDS);
  for (const [menu, entries] of Object.entries(manifest.contributes.menus)) {
    for (const { command } of entries) {
      if (command?.startsWith('attributionPatching.')) assert.ok(ids.has(command), `menu ${menu} names ${command}, which is not a contributed command`);
    }
  }
});

test("a run row's contextValue is the one the run menus match", () => {
  const runMenus = manifest.contributes.menus['view/item/context'] as Array<{ command: string; when: string }>;
  assert.ok(runMenus.length > 0);
  for (const { command, when } of runMenus) assert.match(when, new RegExp(`viewItem == ${RUN_ITEM_CONTEXT.replace('.', '\\.')}\\b`), `${command}: ${when}`);
});

test('no source file spells a command id as a string literal: they come from src/commands/ids.ts', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? files(join(dir, name)) : name.endsWith('.ts') ? [join(dir, name)] : []));
  const literal = new RegExp(`['\`"](${COMMAND_IDS.map((id) => id.replace('.', '\\.')).join('|')})['\`"]`);
  const offenders = files('src').filter((file) => !file.endsWith(join('commands', 'ids.ts')) && literal.test(readFileSync(file, 'utf8')));
  assert.deepEqual(offenders, []);
});
