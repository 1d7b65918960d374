#include "schemas/client_convert.hpp"

#include "schemas/convert.hpp"

namespace rayd::rpc {

namespace {

using client_ops::kind;

std::vector<client_ops::arg> read_args(capnp::List<schema::ClientArg>::Reader in) {
  std::vector<client_ops::arg> out;
  out.reserve(in.size());
  for (auto a : in) {
    client_ops::arg x;
    if (a.isRef()) {
      x.is_ref = true;
      x.value = to_std(a.getRef());
    } else {
      x.value = to_std(a.getValue());
    }
    out.push_back(std::move(x));
  }
  return out;
}

void fill_args(capnp::List<schema::ClientArg>::Builder out,
               const std::vector<client_ops::arg>& in) {
  for (unsigned i = 0; i < in.size(); ++i) {
    if (in[i].is_ref)
      out[i].setRef(in[i].value);
    else
      out[i].setValue(as_data(in[i].value));
  }
}

std::vector<std::string> read_texts(capnp::List<capnp::Text>::Reader in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (auto t : in)
    out.push_back(to_std(t));
  return out;
}

std::vector<std::string> read_datas(capnp::List<capnp::Data>::Reader in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (auto d : in)
    out.push_back(to_std(d));
  return out;
}

void fill_texts(capnp::List<capnp::Text>::Builder out, const std::vector<std::string>& in) {
  for (unsigned i = 0; i < in.size(); ++i)
    out.set(i, in[i]);
}

void fill_datas(capnp::List<capnp::Data>::Builder out, const std::vector<std::string>& in) {
  for (unsigned i = 0; i < in.size(); ++i)
    out.set(i, as_data(in[i]));
}

label_map read_labels(capnp::List<schema::Label>::Reader in) {
  label_map out;
  for (auto l : in)
    out[to_std(l.getKey())] = to_std(l.getValue());
  return out;
}

void fill_labels(capnp::List<schema::Label>::Builder out, const label_map& in) {
  unsigned i = 0;
  for (auto& [k, v] : in) {
    out[i].setKey(k);
    out[i].setValue(v);
    ++i;
  }
}

unsigned size_of(std::size_t n) {
  return static_cast<unsigned>(n);
}

} // namespace

client_ops::op read_op(schema::ClientOp::Reader in) {
  client_ops::op o;
  o.seq = in.getSeq();
  switch (in.which()) {
    case schema::ClientOp::SUBMIT: {
      auto s = in.getSubmit();
      o.what = kind::submit;
      o.result = to_std(s.getResult());
      o.name = to_std(s.getFunction());
      o.args = read_args(s.getArgs());
      o.resources = read_resources(s.getResources());
      o.max_retries = s.getMaxRetries();
      o.labels = read_labels(s.getLabelSelector());
      break;
    }
    case schema::ClientOp::PUT: {
      auto p = in.getPut();
      o.what = kind::put;
      o.result = to_std(p.getResult());
      o.values.push_back(to_std(p.getData()));
      break;
    }
    case schema::ClientOp::PUT_STREAM: {
      auto p = in.getPutStream();
      o.what = kind::put_stream;
      o.result = to_std(p.getResult());
      o.count = p.getSize();
      o.stream = p.getStream();
      break;
    }
    case schema::ClientOp::GET: {
      auto g = in.getGet();
      o.what = kind::get;
      o.ids = read_texts(g.getIds());
      o.timeout_ms = g.getTimeoutMs();
      break;
    }
    case schema::ClientOp::WAIT: {
      auto w = in.getWait();
      o.what = kind::wait;
      o.ids = read_texts(w.getIds());
      o.count = w.getNumReturns();
      o.timeout_ms = w.getTimeoutMs();
      break;
    }
    case schema::ClientOp::ADD_REF:
      o.what = kind::add_ref;
      o.target = to_std(in.getAddRef());
      break;
    case schema::ClientOp::RELEASE:
      o.what = kind::release;
      o.target = to_std(in.getRelease());
      break;
    case schema::ClientOp::CREATE_ACTOR: {
      auto c = in.getCreateActor();
      o.what = kind::create_actor;
      o.target = to_std(c.getClassName());
      o.values = read_datas(c.getArgs());
      o.name = to_std(c.getName());
      o.ns = to_std(c.getNamespace());
      o.get_if_exists = c.getGetIfExists();
      o.flag = c.getDetached();
      o.max_retries = c.getMaxRestarts();
      o.max_task_retries = c.getMaxTaskRetries();
      o.max_concurrency = c.getMaxConcurrency();
      o.resources = read_resources(c.getResources());
      o.labels = read_labels(c.getLabelSelector());
      break;
    }
    case schema::ClientOp::CALL_ACTOR: {
      auto c = in.getCallActor();
      o.what = kind::call_actor;
      o.result = to_std(c.getResult());
      o.target = to_std(c.getActorId());
      o.name = to_std(c.getMethod());
      o.args = read_args(c.getArgs());
      break;
    }
    case schema::ClientOp::GET_ACTOR: {
      auto g = in.getGetActor();
      o.what = kind::get_actor;
      o.name = to_std(g.getName());
      o.ns = to_std(g.getNamespace());
      break;
    }
    case schema::ClientOp::KILL_ACTOR: {
      auto k = in.getKillActor();
      o.what = kind::kill_actor;
      o.target = to_std(k.getActorId());
      o.flag = k.getNoRestart();
      break;
    }
    default:
      o.what = kind::unknown;
  }
  return o;
}

void fill(schema::ClientOp::Builder out, const client_ops::op& in) {
  out.setSeq(in.seq);
  switch (in.what) {
    case kind::submit: {
      auto s = out.initSubmit();
      s.setResult(in.result);
      s.setFunction(in.name);
      fill_args(s.initArgs(size_of(in.args.size())), in.args);
      fill_resources(s.initResources(size_of(in.resources.size())), in.resources);
      s.setMaxRetries(in.max_retries);
      fill_labels(s.initLabelSelector(size_of(in.labels.size())), in.labels);
      break;
    }
    case kind::put: {
      auto p = out.initPut();
      p.setResult(in.result);
      p.setData(as_data(in.values.empty() ? std::string{} : in.values.front()));
      break;
    }
    case kind::put_stream: {
      auto p = out.initPutStream();
      p.setResult(in.result);
      p.setSize(in.count);
      p.setStream(in.stream);
      break;
    }
    case kind::get: {
      auto g = out.initGet();
      fill_texts(g.initIds(size_of(in.ids.size())), in.ids);
      g.setTimeoutMs(in.timeout_ms);
      break;
    }
    case kind::wait: {
      auto w = out.initWait();
      fill_texts(w.initIds(size_of(in.ids.size())), in.ids);
      w.setNumReturns(in.count);
      w.setTimeoutMs(in.timeout_ms);
      break;
    }
    case kind::add_ref:
      out.setAddRef(in.target);
      break;
    case kind::release:
      out.setRelease(in.target);
      break;
    case kind::create_actor: {
      auto c = out.initCreateActor();
      c.setClassName(in.target);
      fill_datas(c.initArgs(size_of(in.values.size())), in.values);
      c.setName(in.name);
      c.setNamespace(in.ns);
      c.setGetIfExists(in.get_if_exists);
      c.setDetached(in.flag);
      c.setMaxRestarts(in.max_retries);
      c.setMaxTaskRetries(in.max_task_retries);
      c.setMaxConcurrency(in.max_concurrency);
      fill_resources(c.initResources(size_of(in.resources.size())), in.resources);
      fill_labels(c.initLabelSelector(size_of(in.labels.size())), in.labels);
      break;
    }
    case kind::call_actor: {
      auto c = out.initCallActor();
      c.setResult(in.result);
      c.setActorId(in.target);
      c.setMethod(in.name);
      fill_args(c.initArgs(size_of(in.args.size())), in.args);
      break;
    }
    case kind::get_actor: {
      auto g = out.initGetActor();
      g.setName(in.name);
      g.setNamespace(in.ns);
      break;
    }
    case kind::kill_actor: {
      auto k = out.initKillActor();
      k.setActorId(in.target);
      k.setNoRestart(in.flag);
      break;
    }
    case kind::unknown:
      break;
  }
}

client_ops::reply read_reply(schema::ClientReply::Reader in) {
  client_ops::reply r;
  r.seq = in.getSeq();
  r.error_kind = to_std(in.getErrorKind());
  r.error = to_std(in.getError());
  r.function = to_std(in.getFunction());
  r.remote_type = to_std(in.getRemoteType());
  r.remote_message = to_std(in.getRemoteMessage());
  r.node_id = to_std(in.getNodeId());
  for (auto v : in.getValues()) {
    client_ops::value x;
    if (v.isStream()) {
      x.streamed = true;
      x.stream = v.getStream().getStream();
      x.size = v.getStream().getSize();
    } else {
      x.bytes = to_std(v.getInline());
    }
    r.values.push_back(std::move(x));
  }
  for (auto b : in.getReady())
    r.ready.push_back(b);
  r.actor_id = to_std(in.getActorId());
  r.class_name = to_std(in.getClassName());
  return r;
}

void fill(schema::ClientReply::Builder out, const client_ops::reply& in) {
  out.setSeq(in.seq);
  out.setErrorKind(in.error_kind);
  out.setError(in.error);
  out.setFunction(in.function);
  out.setRemoteType(in.remote_type);
  out.setRemoteMessage(in.remote_message);
  out.setNodeId(in.node_id);
  auto values = out.initValues(size_of(in.values.size()));
  for (unsigned i = 0; i < in.values.size(); ++i) {
    auto& v = in.values[i];
    if (v.streamed) {
      auto s = values[i].initStream();
      s.setStream(v.stream);
      s.setSize(v.size);
    } else {
      values[i].setInline(as_data(v.bytes));
    }
  }
  auto ready = out.initReady(size_of(in.ready.size()));
  for (unsigned i = 0; i < in.ready.size(); ++i)
    ready.set(i, in.ready[i]);
  out.setActorId(in.actor_id);
  out.setClassName(in.class_name);
}

wire::code_ref read_code(capnp::List<schema::CodeFile>::Reader in) {
  wire::code_ref out;
  for (auto f : in)
    out.files.push_back({to_std(f.getHash()), to_std(f.getName())});
  return out;
}

void fill(capnp::List<schema::CodeFile>::Builder out, const wire::code_ref& in) {
  for (unsigned i = 0; i < in.files.size(); ++i) {
    out[i].setHash(in.files[i].hash);
    out[i].setName(in.files[i].name);
  }
}

} // namespace rayd::rpc
