// Runs execute a model on the workspace's files (and may download one): in Restricted Mode they wait for the user to
// trust the workspace (package.json capabilities.untrustedWorkspaces is "limited"). Diagnostics, hovers and stored
// Results work without trust.
import * as vscode from 'vscode';

const MANAGE_TRUST = 'Manage Workspace Trust';

/** Whether `action` may run now; when the workspace is not trusted, says why and offers the trust editor. */
export function requireWorkspaceTrust(action: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window
    .showWarningMessage(
      `Attribution Patching: ${action} runs a model on this workspace's files, which Restricted Mode does not allow. ` +
        'Trust the workspace to run it; diagnostics and stored Results work without trust.',
      MANAGE_TRUST,
    )
    .then((choice) => choice === MANAGE_TRUST && vscode.commands.executeCommand('workbench.trust.manage'));
  return false;
}
