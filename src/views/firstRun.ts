// First contact: the walkthrough opens by itself the first time the extension runs (once per user), unless the user
// turned that off (attributionPatching.openWalkthroughOnFirstRun, or VS Code's own
// workbench.welcomePage.walkthroughs.openOnInstall, which code-server does not pass to extensions).
import * as vscode from 'vscode';

const SHOWN_KEY = 'attributionPatching.walkthroughShown';
export const WALKTHROUGH_ID = 'attributionPatching.gettingStarted';

export function openWalkthroughOnFirstRun(context: vscode.ExtensionContext): void {
  if (context.globalState.get<boolean>(SHOWN_KEY)) return;
  void context.globalState.update(SHOWN_KEY, true);
  const ours = vscode.workspace.getConfiguration('attributionPatching').get<boolean>('openWalkthroughOnFirstRun', true);
  const editors = vscode.workspace.getConfiguration('workbench.welcomePage').get<boolean>('walkthroughs.openOnInstall', true);
  if (!ours || !editors) return;
  void vscode.commands.executeCommand('workbench.action.openWalkthrough', `${context.extension.id}#${WALKTHROUGH_ID}`, false);
}
