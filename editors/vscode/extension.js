// Starts `storyc lsp` from the user's environment (setting storylang.path) and wires the
// commands to the server's: build the film, build the shot under the cursor alone and open it,
// open the built film at the shot under the cursor.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("storylang").get("path") || "storyc";
  client = new LanguageClient(
    "storylang",
    "storylang",
    { command, args: ["lsp"] },
    { documentSelector: [{ scheme: "file", language: "story" }] }
  );
  context.subscriptions.push(
    vscode.commands.registerCommand("storylang.build", () => {
      const editor = vscode.window.activeTextEditor;
      if (editor) {
        return client.sendRequest("workspace/executeCommand", {
          command: "storyc.build", arguments: [editor.document.uri.toString()],
        });
      }
    }),
    vscode.commands.registerCommand("storylang.previewShot", () => {
      const editor = vscode.window.activeTextEditor;
      if (editor) {
        return client.sendRequest("workspace/executeCommand", {
          command: "storyc.previewShot", arguments: [editor.document.uri.toString(), editor.selection.active.line],
        });
      }
    }),
    vscode.commands.registerCommand("storylang.openShot", () => {
      const editor = vscode.window.activeTextEditor;
      if (editor) {
        return client.sendRequest("workspace/executeCommand", {
          command: "storyc.openShot", arguments: [editor.document.uri.toString(), editor.selection.active.line],
        });
      }
    })
  );
  client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
