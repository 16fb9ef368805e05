#include "report/trace_record.hpp"

namespace tandem::report {

TraceRecord record_for(const strategy::Op& op, int rank, int rank_class, double start_s,
                       double end_s) {
  TraceRecord record;
  record.rank = rank;
  record.rank_class = rank_class;
  record.stream = op.stream;
  record.op_id = op.id;
  record.code = op.code;
  record.phase = op.phase;
  record.layer = op.layer;
  record.micro_batch = op.micro_batch;
  record.bytes = op.bytes;
  record.flops = op.flops;
  record.start_s = start_s;
  record.end_s = end_s;
  return record;
}

}  // namespace tandem::report
