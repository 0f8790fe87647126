// Compiled, not run (tests/CMakeLists.txt): every record type of
// CKPT_NOTE_KINDS has its for_each_ref(), which decoding checks references
// with; a record type without one (-DCKPT_LEAVE_ONE_OUT), as when a kind is
// added to the registry without its decode part, must not build.
#include <ckpt/img/note_kinds.h>

namespace {

using namespace ckpt::img;

// A new kind's record that nobody wrote for_each_ref() for.
struct NewRecord {
  u64 value;
};

template <typename R>
int references() {
  int n = 0;
  for_each_ref(R{}, [&](StrRef) { n++; }, [&](BlobRef) { n++; });
  return n;
}

#define REFERENCES(name, type, R, ...) +references<R>()
int all_references() {
  return 0 CKPT_NOTE_KINDS(REFERENCES)
#ifdef CKPT_LEAVE_ONE_OUT
         + references<NewRecord>()
#endif
      ;
}
#undef REFERENCES

}  // namespace

int main() { return all_references() > 0 ? 0 : 1; }
