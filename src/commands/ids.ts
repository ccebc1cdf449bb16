// Every command this extension contributes, by one typed name: registrations, CodeLenses, tree rows and failure
// actions use these, so a typo is a type error and test/unit/commandIds.test.ts checks the list against
// package.json's contributes.commands. No 'vscode' import: unit-tested under plain Node.

export const COMMANDS = {
  patchCurrentFile: 'attributionPatching.patchCurrentFile',
  openHeatmap: 'attributionPatching.openHeatmap',
  toggleColours: 'attributionPatching.toggleColours',
  selectModel: 'attributionPatching.selectModel',
  selectDevice: 'attributionPatching.selectDevice',
  setHuggingFaceToken: 'attributionPatching.setHuggingFaceToken',
  setWandbApiKey: 'attributionPatching.setWandbApiKey',
  installCuda: 'attributionPatching.installCuda',
  openExampleDataset: 'attributionPatching.openExampleDataset',
  generateIoiDataset: 'attributionPatching.generateIoiDataset',
  generateTinySqlDataset: 'attributionPatching.generateTinySqlDataset',
  revealDataset: 'attributionPatching.revealDataset',
  deleteRun: 'attributionPatching.deleteRun',
  newDataset: 'attributionPatching.newDataset',
  showExample: 'attributionPatching.showExample',
  compareRuns: 'attributionPatching.compareRuns',
  runSweep: 'attributionPatching.runSweep',
  runClaim: 'attributionPatching.runClaim',
  findCircuit: 'attributionPatching.findCircuit',
} as const;

/** One of this extension's command ids. */
export type CommandId = (typeof COMMANDS)[keyof typeof COMMANDS];

export const COMMAND_IDS: readonly CommandId[] = Object.values(COMMANDS);

/** The contextValue of a run's row in the sidebar: package.json's view/item/context menus match it (viewItem ==). */
export const RUN_ITEM_CONTEXT = 'attributionPatching.run';
