title "C:\films\new"
