#pragma once
// working_dir packages: rayctl packs a directory into a deterministic tar.gz
// held in memory, nodes unpack it into a fresh directory. The SHA-256 of the
// bytes names a package, so identical trees share one upload and one cache
// entry. Both directions are synchronous, touch only the given paths and may
// be called from several threads at once (unpacks then run one at a time:
// libarchive's disk writer briefly sets the process umask to 0 per entry, so
// files other threads create meanwhile do not get the usual umask).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace rayd {

/// Options of pack_directory(). Every field states its default.
struct pack_options {
  /// Glob patterns (fnmatch, like .gitignore lines without negation): a file or
  /// directory is skipped when a pattern matches its path relative to the root
  /// (e.g. "data/*.bin") or its base name (e.g. "*.log", "build"). A pattern
  /// ending in '/' matches directories only; one starting with '/' matches the
  /// relative path only (e.g. "/tmp"). Default: none. `.git` directories are
  /// always skipped.
  std::vector<std::string> excludes;
  /// Largest packed (compressed) size accepted. Default: 100 MiB.
  std::size_t max_bytes = 100u << 20;
};

/// Packs the directory tree `dir` into a gzip-compressed tar archive held in
/// memory: regular files, directories and symlinks (as links, never followed),
/// with relative paths, permissions kept, owner/group and times normalized
/// (uid/gid 0, mtime 0) so that the same tree always gives the same bytes (and
/// the same hash). Sockets, fifos and device nodes in the tree are skipped.
/// Errors (errc::invalid_argument, one line naming the path): `dir` missing or
/// not a directory; an unreadable file or directory; a symlink pointing outside
/// the tree (nodes would refuse it); the archive above `max_bytes` — packing
/// stops as soon as the limit is crossed, so no huge buffer is built first.
caf::expected<std::string> pack_directory(const std::string& dir,
                                          const pack_options& opts = {});

/// Unpacks a package made by pack_directory (any tar.gz) into `dest`, which
/// must not exist yet (it is created, mode 0700; parents must exist).
/// Safe against hostile archives: absolute paths, ".." components, symlinks
/// that point outside `dest` or that later entries would write through, hard
/// links, device nodes and fifos are refused. On any error `dest` is removed
/// again and the error (errc::invalid_argument, "cannot unpack package: ...")
/// says why (corrupt/truncated data, refused entry name, disk full).
/// Integrity is the caller's job: compare sha256_hex(bytes) with the package
/// name before unpacking (libarchive 3.6 does not check the gzip CRC, so a
/// flipped byte inside file data goes unnoticed here).
caf::error unpack_archive(std::string_view bytes, const std::string& dest);

/// Lower-case hex SHA-256 of `bytes` (64 characters; "" only if libcrypto
/// itself fails, which then matches no hash).
std::string sha256_hex(std::string_view bytes);

} // namespace rayd
