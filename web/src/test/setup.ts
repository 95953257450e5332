import { configure } from '@testing-library/react';

// waitFor gives up after 1 s by default. CI runs these tests on two shared
// cores next to the Go build, where one StrictMode mount-unmount-mount with
// its fake sockets was seen to take longer; what the tests wait for is
// unchanged, only how long they may take to get there.
configure({ asyncUtilTimeout: 5000 });
