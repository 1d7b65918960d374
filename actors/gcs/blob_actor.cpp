// The GCS blob actor: content-addressed packages (see blob_table.hpp).

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/blob_table.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/archive.hpp"
#include "common/error.hpp"
#include "common/package_uri.hpp"

namespace rayd::gcs {

gcs_blob_actor spawn_blob_actor(caf::actor_system& sys, persistence::store& db) {
  auto table = std::make_shared<blob_table>(db);
  return sys.spawn([table](gcs_blob_actor::pointer self)
                     -> gcs_blob_actor::behavior_type {
    return {
      [table](atoms::blob_put, std::string& data) -> caf::result<std::string> {
        auto hash = sha256_hex(data);
        auto added = table->put(hash, data);
        if (!added)
          return added.error();
        if (*added)
          spdlog::info("stored package {} ({} bytes)", hash, data.size());
        return hash;
      },
      [table](atoms::blob_size, std::string& hash) -> caf::result<uint64_t> {
        auto size = table->size(hash);
        if (!size)
          return size.error();
        if (!*size)
          return make_error(errc::not_found,
                            "no package " + package_uri(hash) + " in the GCS");
        return **size;
      },
      [table](atoms::blob_read, std::string& hash, uint64_t offset,
              uint64_t max_bytes) -> caf::result<std::string> {
        auto data = table->read(hash, offset,
                                std::min<uint64_t>(max_bytes, blob_table::chunk_bytes * 4));
        if (!data)
          return data.error();
        return std::move(*data);
      },
      [table](atoms::blob_drop, std::string& hash) {
        if (auto err = table->drop(hash))
          spdlog::warn("cannot delete package {}: {}", hash, describe(err));
      },
    };
  });
}

} // namespace rayd::gcs
