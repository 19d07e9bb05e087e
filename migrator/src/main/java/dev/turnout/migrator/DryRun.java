package dev.turnout.migrator;

import java.time.Clock;

/**
 * What a platform opened for a dry run works with ({@link Platform.Factory#openDryRun}): the transcript, where it
 * lists each change the run would make at that point instead of making it (and each outside call it makes to read),
 * and the dry run's clock and sleeper, on which every wait passes at once.
 */
public interface DryRun {
  /** Lists one thing the run does at this point, in the phase the dry run is in. */
  void record(String line);

  /**
   * A read the dry run needed failed (a server or an API did not answer): the dry run cannot tell what the run
   * would do, and answers with the failure instead of a transcript.
   */
  void readFailed(MigrationException failure);

  Clock clock();

  Sleeper sleeper();
}
