// Runs before the first paint (a classic script in <head>): apply the theme the toggle chose, so a
// dark-theme user never sees a flash of the light page. Without a choice the CSS follows the system.
try {
  const theme = localStorage.getItem('spanlake.theme');
  if (theme === 'dark' || theme === 'light') document.documentElement.dataset.theme = theme;
} catch { /* storage can be disabled; the system setting still applies */ }
