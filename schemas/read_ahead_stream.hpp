#pragma once
// A kj stream that reads ahead: one read() syscall fills a small buffer, and
// later reads are served from it.
//
// Why: Cap'n Proto 0.9 reads a message with exact-size reads (its first word,
// then the rest), and every call is followed by a Finish message, so a KV put
// cost the API's event loop ~5.5 read() syscalls (the last one EAGAIN). With
// this wrapper a call and the Finish that arrived with it cost one read, plus
// the EAGAIN that ends the burst. Large reads (a 16 MiB value) bypass the
// buffer once it is drained, so nothing is copied twice.
//
// Writes and socket options go straight to the wrapped stream. Not
// thread-safe (a kj stream belongs to its event loop's thread). The wrapped
// stream is owned; the wrapper must not be destroyed while a read is pending
// (the RPC system that reads from it is destroyed first).

#include <algorithm>
#include <cstring>

#include <kj/async-io.h>

namespace rayd::rpc {

class read_ahead_stream final : public kj::AsyncIoStream {
public:
  static constexpr size_t capacity = 8192;

  explicit read_ahead_stream(kj::Own<kj::AsyncIoStream> inner)
    : inner_(kj::mv(inner)), buf_(kj::heapArray<kj::byte>(capacity)) {
  }

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    auto* out = static_cast<kj::byte*>(buffer);
    size_t n = std::min(max_bytes, end_ - begin_);
    std::memcpy(out, buf_.begin() + begin_, n);
    begin_ += n;
    if (n >= min_bytes)
      return n;
    // The buffer is empty here.
    out += n;
    min_bytes -= n;
    max_bytes -= n;
    if (max_bytes >= capacity)
      return inner_->tryRead(out, min_bytes, max_bytes).then([n](size_t got) {
        return n + got;
      });
    begin_ = end_ = 0;
    return inner_->tryRead(buf_.begin(), min_bytes, capacity)
      .then([this, out, max_bytes, n](size_t got) {
        // got < min_bytes only at EOF; the caller sees the short read.
        end_ = got;
        size_t m = std::min(max_bytes, got);
        std::memcpy(out, buf_.begin(), m);
        begin_ = m;
        return n + m;
      });
  }

  kj::Promise<void> write(const void* buffer, size_t size) override {
    return inner_->write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override {
    return inner_->whenWriteDisconnected();
  }
  void shutdownWrite() override {
    inner_->shutdownWrite();
  }
  void abortRead() override {
    inner_->abortRead();
  }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner_->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner_->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override {
    inner_->getsockname(addr, length);
  }
  void getpeername(struct sockaddr* addr, kj::uint* length) override {
    inner_->getpeername(addr, length);
  }
  kj::Maybe<int> getFd() const override {
    return inner_->getFd();
  }

private:
  kj::Own<kj::AsyncIoStream> inner_;
  kj::Array<kj::byte> buf_;
  size_t begin_ = 0; // unread bytes are buf_[begin_, end_)
  size_t end_ = 0;
};

} // namespace rayd::rpc
