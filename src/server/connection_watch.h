// Noticing that an HTTP client went away while its request waits for the engine, so the
// request can leave the batch. cpp-httplib 0.11 (Debian 12) gives handlers no access to
// the connection, so the socket is found by its addresses among this process's sockets.
#pragma once

#include <string>

namespace falcon::server {

class ConnectionWatch {
 public:
  // The connected socket whose local and peer addresses are these; none found leaves the
  // watch inactive (peer_closed() stays false).
  ConnectionWatch(const std::string& local_addr, int local_port, const std::string& remote_addr,
                  int remote_port);
  bool active() const { return fd_ >= 0; }
  // True once the peer closed or reset the connection. Never reads any data.
  bool peer_closed() const;

 private:
  int fd_ = -1;
};

}  // namespace falcon::server
