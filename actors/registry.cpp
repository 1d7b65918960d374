#include "actors/registry.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include "actors/actor_types.hpp"
#include "actors/autoscale_types.hpp"
#include "actors/gcs/actor_manager_actor.hpp"
#include "actors/gcs/gate_actor.hpp"
#include "actors/gcs/node_actor.hpp"
#include "actors/job_types.hpp"
#include "actors/node/node_manager_actor.hpp"
#include "actors/types.hpp"
#include "common/error.hpp"

namespace rayd {

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<node_info>("rayd::node_info");
  cfg.add_message_type<std::vector<node_info>>("std::vector<rayd::node_info>");
  cfg.add_message_type<join_request>("rayd::join_request");
  cfg.add_message_type<join_reply>("rayd::join_reply");
  cfg.add_message_type<cluster_view>("rayd::cluster_view");
  cfg.add_message_type<resource_map>("rayd::resource_map");
  cfg.add_message_type<label_map>("rayd::label_map");
  cfg.add_message_type<node_manager_actor>("rayd::node_manager_actor");
  cfg.add_message_type<gcs_gate_actor>("rayd::gcs_gate_actor");
  cfg.add_message_type<node_listener_actor>("rayd::node_listener_actor");
  cfg.add_message_type<resource_demand>("rayd::resource_demand");
  cfg.add_message_type<std::vector<resource_demand>>("std::vector<rayd::resource_demand>");
  cfg.add_message_type<node_load>("rayd::node_load");
  cfg.add_message_type<node_report>("rayd::node_report");
  cfg.add_message_type<peer_view>("rayd::peer_view");
  cfg.add_message_type<pending_demand>("rayd::pending_demand");
  cfg.add_message_type<std::vector<pending_demand>>("std::vector<rayd::pending_demand>");
  cfg.add_message_type<demand_report>("rayd::demand_report");
  cfg.add_message_type<launchable_type>("rayd::launchable_type");
  cfg.add_message_type<std::vector<launchable_type>>("std::vector<rayd::launchable_type>");
  cfg.add_message_type<std::vector<peer_view>>("std::vector<rayd::peer_view>");
  cfg.add_message_type<task_event>("rayd::task_event");
  cfg.add_message_type<std::vector<task_event>>("std::vector<rayd::task_event>");
  cfg.add_message_type<task_counts>("rayd::task_counts");
  cfg.add_message_type<task_list_reply>("rayd::task_list_reply");
  cfg.add_message_type<job_launch>("rayd::job_launch");
  cfg.add_message_type<job_report>("rayd::job_report");
  cfg.add_message_type<job_submission>("rayd::job_submission");
  cfg.add_message_type<job_info>("rayd::job_info");
  cfg.add_message_type<std::vector<job_info>>("std::vector<rayd::job_info>");
  cfg.add_message_type<log_slice>("rayd::log_slice");
  cfg.add_message_type<string_map>("rayd::string_map");
  cfg.add_message_type<job_state>("rayd::job_state");
  cfg.add_message_type<code_file_ref>("rayd::code_file_ref");
  cfg.add_message_type<std::vector<code_file_ref>>("std::vector<rayd::code_file_ref>");
  cfg.add_message_type<actor_create_request>("rayd::actor_create_request");
  cfg.add_message_type<std::vector<actor_create_request>>(
    "std::vector<rayd::actor_create_request>");
  cfg.add_message_type<actor_info>("rayd::actor_info");
  cfg.add_message_type<std::vector<actor_info>>("std::vector<rayd::actor_info>");
  cfg.add_message_type<actor_launch>("rayd::actor_launch");
  cfg.add_message_type<actor_hosted>("rayd::actor_hosted");
  cfg.add_message_type<actor_manager_actor>("rayd::actor_manager_actor");
  cfg.add_message_type<std::vector<std::string>>("std::vector<std::string>");
}

void register_error_category(caf::actor_system_config& cfg) {
  cfg.add_error_category(errc_category,
                         [](uint8_t code, caf::atom_value,
                            const caf::message& ctx) {
                           std::string out = to_string(static_cast<errc>(code));
                           if (ctx.match_elements<std::string>())
                             out += ": " + ctx.get_as<std::string>(0);
                           return out;
                         });
}

} // namespace rayd
