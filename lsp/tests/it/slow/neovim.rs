//! A real editor as the client: Neovim, headless, starts `tbt lsp`, receives its diagnostics and
//! asks for hover and definition. Skipped locally when `nvim` is missing, a failure with `CI=true`.
#![allow(clippy::unwrap_used)]

use crate::binary::{missing, tbt_binary};
use crate::common::*;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

const NVIM_SCRIPT: &str = r#"
local out_path = os.getenv('TBT_NVIM_OUT')
local results = {}
local ok, err = pcall(function()
  local root = os.getenv('TBT_ROOT')
  local file = root .. '/suite.tbt'
  local diagnostics = nil
  local client_id = vim.lsp.start_client({
    name = 'tbt',
    cmd = { os.getenv('TBT_BIN'), 'lsp' },
    root_dir = root,
    handlers = {
      ['textDocument/publishDiagnostics'] = function(_, result)
        if result and result.uri == vim.uri_from_fname(file) and diagnostics == nil then
          diagnostics = result.diagnostics
        end
      end,
    },
  })
  vim.cmd('edit ' .. file)
  local buf = vim.api.nvim_get_current_buf()
  vim.lsp.buf_attach_client(buf, client_id)
  if not vim.wait(30000, function() return diagnostics ~= nil end, 10) then
    error('no diagnostics within 30 s')
  end
  results.diagnostics = diagnostics
  local client = vim.lsp.get_client_by_id(client_id)
  local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = tonumber(os.getenv('TBT_LINE')), character = tonumber(os.getenv('TBT_CHAR')) } }
  local hover = client.request_sync('textDocument/hover', params, 30000, buf)
  results.hover = hover and hover.result
  local def = client.request_sync('textDocument/definition', params, 30000, buf)
  results.definition = def and def.result
  client.stop()
end)
if not ok then results.error = tostring(err) end
local f = io.open(out_path, 'w')
f:write(vim.fn.json_encode(results))
f:close()
vim.cmd('qa!')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_as_the_client() {
    let Some(bin) = tbt_binary() else {
        return missing("the `tbt` binary is not built (run `cargo test --workspace`)");
    };
    let nvim_ok = std::process::Command::new("nvim")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !nvim_ok {
        return missing("Neovim (`nvim`) is not installed: `apt-get install neovim`");
    }
    // Non-ASCII before the name under the cursor: Neovim counts UTF-16 units too.
    let text = "# «café» 😀\nlet base = \"http://127.0.0.1:8080\"\n\ntest t {\n  trigger http GET \"😀${base}/x\" \n  expect response { status = 200 }\n}\n";
    let ws = workspace(&[("suite.tbt", text)]);
    let script = ws.path().join("client.lua");
    std::fs::write(&script, NVIM_SCRIPT).unwrap();
    let out_path = ws.path().join("out.json");
    let at = find(text, "base}/x");
    let mut child = tokio::process::Command::new("nvim")
        .args(["--headless", "-u", "NONE", "-i", "NONE", "-n", "-c"])
        .arg(format!("luafile {}", script.display()))
        .env("TBT_BIN", &bin)
        .env("TBT_ROOT", ws.path())
        .env("TBT_NVIM_OUT", &out_path)
        .env("TBT_LINE", at["line"].to_string())
        .env("TBT_CHAR", at["character"].to_string())
        .current_dir(ws.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .expect("Neovim did not finish within 90 s")
        .unwrap();
    assert!(status.success(), "nvim exited with {status}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    assert!(results.get("error").is_none(), "{results}");
    let codes: Vec<&str> = results["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["TBT0008"], "{results}");
    let eq = &results["diagnostics"][0]["range"]["start"];
    assert_eq!(eq, &find(text, "= 200"), "{results}");
    let hover = results["hover"]["contents"]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(hover.contains("let base"), "{results}");
    assert_eq!(
        results["definition"][0]["targetSelectionRange"]["start"],
        find(text, "base ="),
        "{results}"
    );
}
