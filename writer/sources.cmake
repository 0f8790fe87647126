set(CKPT_WRITER_PROCFS_SOURCES src/procfs.cc src/fds.cc)
