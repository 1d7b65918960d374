#include "common/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>

#include "common/error.hpp"

namespace rayd {

namespace {

namespace fs = std::filesystem;

using archive_ptr = std::unique_ptr<archive, int (*)(archive*)>;
using entry_ptr = std::unique_ptr<archive_entry, void (*)(archive_entry*)>;

std::string errno_text(int err) {
  return std::strerror(err);
}

// libarchive leaves the message empty on some paths, e.g. a gzip stream cut
// inside its trailer.
std::string archive_text(archive* a, const char* fallback = "unknown libarchive error") {
  auto* msg = archive_error_string(a);
  return msg != nullptr ? msg : fallback;
}

// "1 MiB", "123.4 MiB", "12 KiB", "512 bytes".
std::string format_size(std::size_t n) {
  char buf[48];
  if (n >= (1u << 20))
    std::snprintf(buf, sizeof(buf), "%.1f MiB", n / 1048576.0);
  else if (n >= 1024)
    std::snprintf(buf, sizeof(buf), "%.1f KiB", n / 1024.0);
  else
    return std::to_string(n) + " bytes";
  std::string s = buf;
  auto pos = s.find(".0 ");
  if (pos != std::string::npos)
    s.erase(pos, 2);
  return s;
}

// True if the symlink target `target`, read relative to the link's directory
// `link_dir` ('/'-separated, relative to the root, "" for the root itself),
// stays inside the root. Lexical only: chains through other links are checked
// physically after extraction (see check_links).
bool link_stays_inside(const std::string& link_dir, std::string_view target) {
  if (target.empty() || target.front() == '/')
    return false;
  std::size_t depth = 0;
  auto count = [&depth](std::string_view path, bool may_climb) {
    std::size_t pos = 0;
    while (pos <= path.size()) {
      auto end = path.find('/', pos);
      if (end == std::string_view::npos)
        end = path.size();
      auto part = path.substr(pos, end - pos);
      pos = end + 1;
      if (part.empty() || part == ".")
        continue;
      if (part == "..") {
        if (!may_climb || depth == 0)
          return false;
        --depth;
      } else {
        ++depth;
      }
    }
    return true;
  };
  return count(link_dir, false) && count(target, true);
}

// The entry name without "." and empty components; "" for the root itself;
// nullopt for absolute names and names with a ".." component.
std::optional<std::string> normalize_entry_name(std::string_view name) {
  if (name.empty() || name.front() == '/')
    return std::nullopt;
  std::string out;
  std::size_t pos = 0;
  while (pos <= name.size()) {
    auto end = name.find('/', pos);
    if (end == std::string_view::npos)
      end = name.size();
    auto part = name.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".")
      continue;
    if (part == "..")
      return std::nullopt;
    if (!out.empty())
      out += '/';
    out.append(part);
  }
  return out;
}

std::string parent_of(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string{} : rel.substr(0, slash);
}

// -- packing ------------------------------------------------------------------

// Output of the archive writer: appends to `data` and refuses (failing the
// write, which stops packing) once `limit` would be crossed.
struct bounded_sink {
  std::string data;
  std::size_t limit = 0;
  bool over = false;
};

la_ssize_t sink_write(archive*, void* ctx, const void* buf, size_t n) {
  auto* sink = static_cast<bounded_sink*>(ctx);
  if (n > sink->limit - sink->data.size()) {
    sink->over = true;
    return -1;
  }
  sink->data.append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

bool is_excluded(const std::vector<std::string>& patterns,
                 const std::string& rel, const std::string& name, bool is_dir) {
  for (const auto& pattern : patterns) {
    std::string p = pattern;
    bool dir_only = !p.empty() && p.back() == '/';
    if (dir_only) {
      if (!is_dir)
        continue;
      p.pop_back();
    }
    // A leading '/' anchors at the root, as in .gitignore: no base name match.
    bool anchored = !p.empty() && p.front() == '/';
    if (anchored)
      p.erase(0, 1);
    if (p.empty())
      continue;
    if (::fnmatch(p.c_str(), rel.c_str(), FNM_PATHNAME) == 0
        || (!anchored && ::fnmatch(p.c_str(), name.c_str(), FNM_PATHNAME) == 0))
      return true;
  }
  return false;
}

struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

class packer {
public:
  packer(const std::string& dir, const pack_options& opts)
    : dir_(dir), opts_(opts), archive_(archive_write_new(), archive_write_free),
      entry_(archive_entry_new(), archive_entry_free), buf_(64 * 1024) {
    sink_.limit = opts.max_bytes;
  }

  caf::expected<std::string> run() {
    auto* a = archive_.get();
    if (a == nullptr || entry_ == nullptr)
      return make_error(errc::internal, "libarchive: out of memory");
    // Restricted pax: plain ustar headers unless a name or link is too long.
    // The gzip header gets no timestamp and the stream no zero padding, so the
    // bytes depend on the tree only.
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK
        || archive_write_add_filter_gzip(a) != ARCHIVE_OK
        || archive_write_set_filter_option(a, "gzip", "timestamp", nullptr) != ARCHIVE_OK
        || archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK
        || archive_write_open2(a, &sink_, nullptr, sink_write, nullptr, nullptr) != ARCHIVE_OK)
      return make_error(errc::internal, "libarchive: " + archive_text(a));
    if (auto err = walk(dir_, ""))
      return err;
    if (archive_write_close(a) != ARCHIVE_OK)
      return write_failure("");
    return std::move(sink_.data);
  }

private:
  caf::error fail(const std::string& what) const {
    return make_error(errc::invalid_argument, "working_dir " + dir_ + ": " + what);
  }

  // A failed libarchive write: the size limit (our sink refused) or else.
  caf::error write_failure(const std::string& rel) {
    if (sink_.over) {
      std::string msg = "working_dir " + dir_ + " packs to more than the limit of "
                        + format_size(opts_.max_bytes);
      if (!rel.empty())
        msg += " (crossed at " + rel + ")";
      msg += "; exclude large files with \"excludes\" in the runtime env";
      return make_error(errc::invalid_argument, std::move(msg));
    }
    return fail("cannot pack " + (rel.empty() ? std::string{"."} : rel) + ": "
                + archive_text(archive_.get()));
  }

  // Starts an entry with normalized owner and times.
  archive_entry* new_entry(const std::string& rel, mode_t type, mode_t mode) {
    auto* e = archive_entry_clear(entry_.get());
    archive_entry_set_pathname(e, rel.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode & 0777);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, 0, 0);
    return e;
  }

  caf::error walk(const std::string& abs, const std::string& rel) {
    // Sorted by name so the same tree always gives the same entry order.
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(abs, ec), end; !ec && it != end; it.increment(ec))
      names.push_back(it->path().filename().string());
    if (ec)
      return fail("cannot read " + (rel.empty() ? std::string{"."} : rel) + ": "
                  + ec.message());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      auto child_abs = abs + "/" + name;
      auto child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (::lstat(child_abs.c_str(), &st) != 0) {
        if (errno == ENOENT)
          continue; // deleted while we walk
        return fail("cannot read " + child_rel + ": " + errno_text(errno));
      }
      bool is_dir = S_ISDIR(st.st_mode);
      if ((is_dir && name == ".git") || is_excluded(opts_.excludes, child_rel, name, is_dir))
        continue;
      caf::error err;
      if (is_dir) {
        err = add_header(new_entry(child_rel, AE_IFDIR, st.st_mode), child_rel);
        if (!err)
          err = walk(child_abs, child_rel);
      } else if (S_ISREG(st.st_mode)) {
        err = add_file(child_abs, child_rel);
      } else if (S_ISLNK(st.st_mode)) {
        err = add_symlink(child_abs, child_rel, st);
      }
      // Sockets, fifos and devices: nothing a job could use from a package.
      if (err)
        return err;
    }
    return {};
  }

  caf::error add_header(archive_entry* e, const std::string& rel) {
    if (archive_write_header(archive_.get(), e) < ARCHIVE_WARN)
      return write_failure(rel);
    return {};
  }

  caf::error add_symlink(const std::string& abs, const std::string& rel,
                         const struct stat& st) {
    std::string target(static_cast<std::size_t>(st.st_size) + 256, '\0');
    auto n = ::readlink(abs.c_str(), target.data(), target.size());
    if (n < 0)
      return fail("cannot read symlink " + rel + ": " + errno_text(errno));
    target.resize(static_cast<std::size_t>(n));
    // Nodes refuse such links; say so here, where the user can fix it.
    if (!link_stays_inside(parent_of(rel), target))
      return fail("symlink " + rel + " -> " + target
                  + " points outside the directory; exclude it with \"excludes\""
                    " in the runtime env");
    auto* e = new_entry(rel, AE_IFLNK, st.st_mode);
    archive_entry_set_symlink(e, target.c_str());
    return add_header(e, rel);
  }

  caf::error add_file(const std::string& abs, const std::string& rel) {
    // O_NOFOLLOW: if the file became a symlink since lstat, do not follow it.
    fd_guard fd{::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
    if (fd.fd < 0)
      return fail("cannot read " + rel + ": " + errno_text(errno));
    struct stat st;
    if (::fstat(fd.fd, &st) != 0)
      return fail("cannot read " + rel + ": " + errno_text(errno));
    if (!S_ISREG(st.st_mode))
      return fail(rel + " changed while packing");
    auto* e = new_entry(rel, AE_IFREG, st.st_mode);
    archive_entry_set_size(e, st.st_size);
    if (auto err = add_header(e, rel))
      return err;
    auto remaining = static_cast<std::size_t>(st.st_size);
    while (remaining > 0) {
      auto n = ::read(fd.fd, buf_.data(), std::min(remaining, buf_.size()));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return fail("cannot read " + rel + ": " + errno_text(errno));
      if (n == 0)
        return fail(rel + " changed while packing (shrank)");
      if (archive_write_data(archive_.get(), buf_.data(), static_cast<std::size_t>(n)) < 0)
        return write_failure(rel);
      remaining -= static_cast<std::size_t>(n);
    }
    return {};
  }

  const std::string& dir_;
  const pack_options& opts_;
  archive_ptr archive_;
  entry_ptr entry_;
  bounded_sink sink_;
  std::vector<char> buf_;
};

// -- unpacking ----------------------------------------------------------------

caf::error refuse(const std::string& why) {
  return make_error(errc::invalid_argument, "cannot unpack package: " + why);
}

// An entry name fit for a one-line message: hostile names may hold newlines.
std::string printable(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 200))
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  if (name.size() > 200)
    out += "...";
  return out;
}

// The disk writer's message, with the errno text it often leaves out
// ("Write failed" for a full disk).
std::string disk_text(archive* out) {
  auto text = archive_text(out);
  auto err = archive_errno(out);
  if (err > 0 && err < 1000) {
    std::string sys = std::strerror(err);
    if (text.find(sys) == std::string::npos)
      text += ": " + sys;
  }
  return text;
}

// A hostile archive may leave directories without write or search permission;
// grant them back so remove_all can finish.
void make_removable(const fs::path& dir) {
  ::chmod(dir.c_str(), 0700);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->symlink_status(type_ec).type() == fs::file_type::directory)
      make_removable(it->path());
  }
}

void remove_tree(const std::string& root) {
  std::error_code ec;
  fs::remove_all(root, ec);
  if (!ec)
    return;
  make_removable(root);
  fs::remove_all(root, ec);
}

// Every symlink under `root`, resolved physically, must stay inside `root`.
// Catches chains the per-entry lexical check cannot see, e.g. "a/b/s" -> "../.."
// followed by "t" -> "a/b/s/../x".
caf::error check_links(const std::string& root) {
  std::error_code ec;
  fs::recursive_directory_iterator it(root, ec);
  for (fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_symlink(type_ec))
      continue;
    auto rel = printable(it->path().lexically_relative(root).string());
    std::error_code link_ec;
    auto target = fs::read_symlink(it->path(), link_ec);
    fs::path resolved;
    if (!link_ec)
      resolved = fs::weakly_canonical(it->path().parent_path() / target, link_ec);
    if (link_ec)
      return refuse("symlink \"" + rel + "\" cannot be resolved: " + link_ec.message());
    auto s = resolved.string();
    if (s != root && s.compare(0, root.size() + 1, root + "/") != 0)
      return refuse("symlink \"" + rel + "\" points outside the destination");
  }
  if (ec)
    return refuse("cannot check symlinks: " + ec.message());
  return {};
}

// Extracts into `root` (absolute, free of symlinks, just created).
caf::error extract(std::string_view bytes, const std::string& root) {
  archive_ptr in(archive_read_new(), archive_read_free);
  archive_ptr out(archive_write_disk_new(), archive_write_free);
  if (in == nullptr || out == nullptr)
    return refuse("libarchive: out of memory");
  archive_read_support_filter_gzip(in.get());
  archive_read_support_format_tar(in.get());
  if (archive_read_open_memory(in.get(), bytes.data(), bytes.size()) != ARCHIVE_OK)
    return refuse("corrupt data: " + archive_text(in.get(), "unexpected end of data"));
  // Entry names are rewritten to "<root>/<name>", which is absolute, so
  // SECURE_NOABSOLUTEPATHS cannot be used; normalize_entry_name refuses
  // absolute names before the rewrite instead. No OWNER, TIME, XATTR or ACL.
  // The disk writer reports real failures as ARCHIVE_WARN too (a full disk,
  // a failed chmod), so anything but ARCHIVE_OK from `out` is an error.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT
                                              | ARCHIVE_EXTRACT_SECURE_SYMLINKS
                                              | ARCHIVE_EXTRACT_PERM);
  bool saw_link = false;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(in.get(), &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return refuse("corrupt or truncated data: "
                    + archive_text(in.get(), "unexpected end of data"));
    const char* raw = archive_entry_pathname(e);
    auto name = printable(raw != nullptr ? raw : "");
    auto rel = normalize_entry_name(raw != nullptr ? raw : "");
    if (!rel)
      return refuse("entry \"" + name + "\" has an absolute path or a \"..\" component");
    if (rel->empty())
      continue; // the root itself: dest keeps mode 0700
    auto type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != nullptr)
      return refuse("entry \"" + name + "\" is a hard link");
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      if (target == nullptr || !link_stays_inside(parent_of(*rel), target))
        return refuse("symlink \"" + name + "\" points outside the destination");
      saw_link = true;
    } else if (type != AE_IFREG && type != AE_IFDIR) {
      return refuse("entry \"" + name + "\" is not a file, directory or symlink");
    }
    auto path = root + "/" + *rel;
    archive_entry_set_pathname(e, path.c_str());
    if (archive_write_header(out.get(), e) != ARCHIVE_OK)
      return refuse("entry \"" + name + "\": " + disk_text(out.get()));
    if (type == AE_IFREG) {
      const void* block = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      for (;;) {
        r = archive_read_data_block(in.get(), &block, &size, &offset);
        if (r == ARCHIVE_EOF)
          break;
        if (r < ARCHIVE_WARN)
          return refuse("corrupt or truncated data in \"" + name + "\": "
                        + archive_text(in.get(), "unexpected end of data"));
        if (archive_write_data_block(out.get(), block, size, offset) != ARCHIVE_OK)
          return refuse("cannot write \"" + name + "\": " + disk_text(out.get()));
      }
    }
    if (archive_write_finish_entry(out.get()) != ARCHIVE_OK)
      return refuse("cannot write \"" + name + "\": " + disk_text(out.get()));
  }
  // Close applies the deferred directory permissions.
  if (archive_write_close(out.get()) != ARCHIVE_OK)
    return refuse(disk_text(out.get()));
  return saw_link ? check_links(root) : caf::error{};
}

} // namespace

caf::expected<std::string> pack_directory(const std::string& dir,
                                          const pack_options& opts) {
  struct stat st;
  if (dir.empty())
    return make_error(errc::invalid_argument, "working_dir is empty");
  if (::stat(dir.c_str(), &st) != 0)
    return make_error(errc::invalid_argument,
                      errno == ENOENT ? "working_dir " + dir + " does not exist"
                                      : "working_dir " + dir + ": " + errno_text(errno));
  if (!S_ISDIR(st.st_mode))
    return make_error(errc::invalid_argument, "working_dir " + dir + " is not a directory");
  packer p{dir, opts};
  return p.run();
}

caf::error unpack_archive(std::string_view bytes, const std::string& dest) {
  if (dest.empty())
    return refuse("empty destination path");
  struct stat st;
  if (::lstat(dest.c_str(), &st) == 0)
    return refuse(dest + " already exists");
  // Resolve the parent once: SECURE_SYMLINKS refuses any symlink on the whole
  // path, including e.g. a symlinked /tmp above dest.
  std::error_code ec;
  auto path = fs::absolute(dest, ec).lexically_normal();
  if (!ec && !path.has_filename())
    path = path.parent_path();
  fs::path parent;
  if (!ec)
    parent = fs::canonical(path.parent_path(), ec);
  if (ec)
    return refuse("cannot create " + dest + ": " + ec.message());
  auto root = (parent / path.filename()).string();
  if (::mkdir(root.c_str(), 0700) != 0)
    return refuse("cannot create " + dest + ": " + errno_text(errno));
  ::chmod(root.c_str(), 0700); // in case the umask took bits away
  // libarchive's disk writer sets the process umask to 0 and back around each
  // entry; two unpacks interleaving could leave it at 0 for good.
  static std::mutex umask_mutex;
  std::unique_lock<std::mutex> guard{umask_mutex};
  auto err = extract(bytes, root);
  guard.unlock();
  if (err)
    remove_tree(root);
  return err;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // Fails only if libcrypto cannot allocate; "" then never equals a hash.
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1)
    return {};
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 0xf];
  }
  return out;
}

} // namespace rayd
