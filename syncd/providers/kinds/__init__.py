"""One module per provider kind behind `discover.Provider`; imports providers and the bottom."""
