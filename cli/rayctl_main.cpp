// rayctl: parses flags (CLI11 lives only here) and runs one command.
// --address/--token/--token-file are accepted before or after the subcommand.

#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/rayctl.hpp"

int main(int argc, char** argv) {
  rayd::cli::rayctl_target t;
  CLI::App app{"rayctl: talk to a rayd cluster through its head's API port"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--address", t.address,
                 "The head's API address HOST:PORT (else RAYD_ADDRESS, else the local "
                 "session_latest)");
  app.add_option("--token", t.token,
                 "Cluster token (else --token-file, RAYD_TOKEN, RAYD_TOKEN_FILE, else the "
                 "local head session's auth_token)");
  app.add_option("--token-file", t.token_file, "File holding the cluster token");

  bool json = false;
  auto* status = app.add_subcommand("status", "Show the cluster: nodes, resources, demands");
  status->add_flag("--json", json, "Machine-readable output");
  auto* nodes = app.add_subcommand("nodes", "List the nodes");
  nodes->add_flag("--json", json, "Machine-readable output");

  std::string ns, key, value, prefix;
  auto* kv = app.add_subcommand("kv", "The cluster's internal key-value store");
  kv->require_subcommand(1);
  kv->fallthrough();
  auto add_ns = [&ns](CLI::App* c) {
    c->add_option("--namespace", ns, "Namespace (default: the empty namespace)");
    c->fallthrough();
  };
  auto* put = kv->add_subcommand("put", "Store VALUE under KEY (durable when it returns)");
  put->add_option("key", key, "Key")->required();
  put->add_option("value", value, "Value")->required();
  add_ns(put);
  auto* get = kv->add_subcommand("get", "Print the value of KEY (exit 1 if missing)");
  get->add_option("key", key, "Key")->required();
  add_ns(get);
  auto* del = kv->add_subcommand("del", "Delete KEY (exit 1 if missing)");
  del->add_option("key", key, "Key")->required();
  add_ns(del);
  auto* list = kv->add_subcommand("list", "List keys");
  list->add_option("--prefix", prefix, "Only keys starting with this");
  list->add_flag("--json", json, "Machine-readable output");
  add_ns(list);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "rayctl: " << e.what() << " (see rayctl --help)" << std::endl;
    return 2;
  }
  using namespace rayd::cli;
  if (status->parsed())
    return rayctl_status(t, json);
  if (nodes->parsed())
    return rayctl_nodes(t, json);
  if (put->parsed())
    return rayctl_kv_put(t, ns, key, value);
  if (get->parsed())
    return rayctl_kv_get(t, ns, key);
  if (del->parsed())
    return rayctl_kv_del(t, ns, key);
  if (list->parsed())
    return rayctl_kv_list(t, ns, prefix, json);
  std::cerr << "rayctl: no command given (see rayctl --help)" << std::endl;
  return 2;
}
