// ameir_service: a small prediction service over libameir's C API, in C++17.
//
// It loads a model once and scores the rows it reads from stdin on several threads that share
// that model (include/ameir/model.h: a model may be used for prediction from many threads at
// once). Rows are grouped in batches; each worker scores a whole batch with one library call;
// the scores come out one a line, in input order, as soon as every earlier batch is done.
//
//   c++ -std=c++17 main.cpp $(pkg-config --cflags --libs ameir) -pthread -o ameir_service
//   ameir_service MODEL [--threads N] [--batch ROWS] [--header] < rows.csv > scores.txt
//
// Rows are lines in the format of the data the model was trained on (its dataset configuration
// travels in the model file). With --header the first line of stdin is that format's header
// line, needed when the dataset's YAML says `header: true`.
#include <ameir/ameir.h>

#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

const char kUsage[] =
    "usage: ameir_service MODEL [--threads N] [--batch ROWS] [--header]\n"
    "Reads rows in the model's training data format from stdin and prints one click\n"
    "probability a line, in input order. --threads: scoring threads (default 4); --batch: rows\n"
    "per library call (default 256); --header: the first line of stdin is the format's header.\n";

// A failed library call: the status and the message the library kept for it.
struct Error : std::runtime_error {
  Error(const std::string &what, ameir_status st, const char *message)
      : std::runtime_error(what + ": " + ameir_status_str(st) + ": " + message), status(st) {}
  ameir_status status;
};

// Owning handles: every handle has exactly one _free, and _free(NULL) is a no-op.
struct ContextFree {
  void operator()(ameir_context *c) const { ameir_context_free(c); }
};
struct ModelFree {
  void operator()(ameir_model *m) const { ameir_model_free(m); }
};
struct LibFree {
  void operator()(void *p) const { ameir_free(p); }
};
using Context = std::unique_ptr<ameir_context, ContextFree>;
using Model = std::unique_ptr<ameir_model, ModelFree>;

// Warnings and errors of the library go to stderr, one line each, whichever thread logs them.
std::mutex log_mutex;
void log_to_stderr(int32_t level, const char *message, void *) {
  std::lock_guard<std::mutex> lock(log_mutex);
  std::fprintf(stderr, "ameir_service: libameir %s: %s\n",
               level == AMEIR_LOG_ERROR ? "error" : "warning", message);
}

// Scores batches of rows with one shared model. score() may be called from several threads.
class Scorer {
 public:
  Scorer(const char *model_path, std::string header) : header_(std::move(header)) {
    ameir_context *ctx = nullptr;
    ameir_status st = ameir_context_create(&ctx, "cpu");
    if (st != AMEIR_OK) throw Error("context", st, ameir_last_error());
    ctx_.reset(ctx);
    // Parallelism comes from the request threads: one library thread each keeps the machine
    // from being oversubscribed (the BLAS thread count is process-wide, see context.h).
    check(ameir_context_set_int(ctx, "threads", 1), "threads");
    check(ameir_context_set_int(ctx, "log_level", AMEIR_LOG_WARN), "log_level");
    ameir_context_set_log_callback(ctx, log_to_stderr, nullptr);
    ameir_model *model = nullptr;
    check(ameir_model_load(&model, ctx, model_path), model_path);
    model_.reset(model);
    const char *dir = std::getenv("TMPDIR");
    tmp_dir_ = dir && *dir ? dir : "/tmp";
  }

  // Scores rows (lines of the training data format, without their newline) into n floats.
  std::vector<float> score(const std::vector<std::string> &rows) const {
    // ameir_model_predict_file reads a data file: the batch goes through a private temporary file.
    std::string path = tmp_dir_ + "/ameir-service-XXXXXX";
    int fd = mkstemp(&path[0]);
    if (fd < 0) throw std::runtime_error("cannot create a temporary file in " + tmp_dir_);
    struct Unlink {
      std::string path;
      ~Unlink() { unlink(path.c_str()); }
    } unlink_at_exit{path};
    std::unique_ptr<FILE, int (*)(FILE *)> f(fdopen(fd, "w"), std::fclose);
    if (!f) {
      close(fd);
      throw std::runtime_error("cannot write " + path);
    }
    if (!header_.empty()) std::fprintf(f.get(), "%s\n", header_.c_str());
    for (const std::string &row : rows) std::fprintf(f.get(), "%s\n", row.c_str());
    if (std::fclose(f.release()) != 0) throw std::runtime_error("cannot write " + path);

    float *scores = nullptr;
    int64_t n = 0;
    check(ameir_model_predict_file(model_.get(), path.c_str(), &scores, &n), "predict");
    std::unique_ptr<float, LibFree> owned(scores);
    if (n != static_cast<int64_t>(rows.size()))
      throw std::runtime_error("the library scored " + std::to_string(n) + " rows of a batch of " +
                               std::to_string(rows.size()));
    return std::vector<float>(scores, scores + n);
  }

 private:
  void check(ameir_status st, const std::string &what) const {
    if (st != AMEIR_OK) throw Error(what, st, ameir_context_last_error(ctx_.get()));
  }

  Context ctx_;  // declared first: destroyed after the model made from it
  Model model_;
  std::string header_;
  std::string tmp_dir_;
};

// Batches waiting for a worker, and finished scores waiting for the earlier batches.
class Pipeline {
 public:
  Pipeline(const Scorer &scorer, size_t max_queued) : scorer_(scorer), max_queued_(max_queued) {}

  // Reader side: blocks while max_queued batches wait. False once a worker has failed.
  bool push(std::vector<std::string> batch) {
    std::unique_lock<std::mutex> lock(mutex_);
    room_.wait(lock, [&] { return queue_.size() < max_queued_ || failed_; });
    if (failed_) return false;
    queue_.emplace_back(next_in_++, std::move(batch));
    work_.notify_one();
    return true;
  }

  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    work_.notify_all();
  }

  void worker() {
    for (;;) {
      std::pair<size_t, std::vector<std::string>> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_.wait(lock, [&] { return !queue_.empty() || closed_ || failed_; });
        if (failed_ || queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        room_.notify_one();
      }
      std::vector<float> scores;
      try {
        scores = scorer_.score(job.second);
      } catch (const std::exception &e) {
        fail(e.what());
        return;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      done_.emplace(job.first, std::move(scores));
      // print every batch whose predecessors are all out, in order
      for (auto it = done_.find(next_out_); it != done_.end(); it = done_.find(next_out_)) {
        for (float p : it->second) std::printf("%.6f\n", p);
        rows_out_ += it->second.size();
        done_.erase(it);
        next_out_++;
      }
    }
  }

  const std::string &error() const { return error_; }
  size_t rows_out() const { return rows_out_; }
  size_t batches() const { return next_in_; }

 private:
  void fail(const std::string &message) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failed_) error_ = message;
    failed_ = true;
    work_.notify_all();
    room_.notify_all();
  }

  const Scorer &scorer_;
  const size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable work_, room_;
  std::deque<std::pair<size_t, std::vector<std::string>>> queue_;
  std::map<size_t, std::vector<float>> done_;
  size_t next_in_ = 0, next_out_ = 0, rows_out_ = 0;
  bool closed_ = false, failed_ = false;
  std::string error_;
};

bool parse_count(const char *text, long max, long *out) {
  char *end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end || v < 1 || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  const char *model_path = nullptr;
  long threads = 4, batch = 256;
  bool header = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--threads" && i + 1 < argc) {
      if (!parse_count(argv[++i], 256, &threads)) return std::fputs(kUsage, stderr), kExitUsage;
    } else if (a == "--batch" && i + 1 < argc) {
      if (!parse_count(argv[++i], 1 << 20, &batch)) return std::fputs(kUsage, stderr), kExitUsage;
    } else if (a == "--header") {
      header = true;
    } else if (a[0] == '-' || model_path) {
      return std::fputs(kUsage, stderr), kExitUsage;
    } else {
      model_path = argv[i];
    }
  }
  if (!model_path) return std::fputs(kUsage, stderr), kExitUsage;

  std::ios::sync_with_stdio(false);
  std::string line, header_line;
  if (header && !std::getline(std::cin, header_line)) {
    std::fputs("ameir_service: --header: stdin is empty\n", stderr);
    return kExitRuntime;
  }
  try {
    Scorer scorer(model_path, header_line);
    Pipeline pipeline(scorer, 2 * static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    for (long t = 0; t < threads; t++) pool.emplace_back(&Pipeline::worker, &pipeline);
    std::vector<std::string> rows;
    bool ok = true;
    while (ok && std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      rows.push_back(std::move(line));
      if (rows.size() == static_cast<size_t>(batch)) {
        ok = pipeline.push(std::move(rows));
        rows.clear();
      }
    }
    if (ok && !rows.empty()) pipeline.push(std::move(rows));
    pipeline.close();
    for (std::thread &t : pool) t.join();
    std::fflush(stdout);
    if (!pipeline.error().empty()) {
      std::fprintf(stderr, "ameir_service: %s\n", pipeline.error().c_str());
      return kExitRuntime;
    }
    std::fprintf(stderr, "ameir_service: %zu rows in %zu batches on %ld threads (libameir %s)\n",
                 pipeline.rows_out(), pipeline.batches(), threads, ameir_version_string());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "ameir_service: %s\n", e.what());
    return kExitRuntime;
  }
  return 0;
}
