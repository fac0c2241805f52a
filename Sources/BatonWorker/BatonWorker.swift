/// BatonWorker owns task execution: it starts a task's command as a child process in its own
/// process group, sends its output to the attempt's log, enforces the timeout by signalling the
/// whole group, and reads the small JSON output the task may leave behind.
enum BatonWorkerModule {}
